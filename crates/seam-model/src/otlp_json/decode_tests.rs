//! Unit tests of the decoder's private helpers.

use super::*;

#[test]
fn snake_case_spelling() {
    assert!(is_snake_of("trace_id", "traceId"));
    assert!(is_snake_of(
        "dropped_attributes_count",
        "droppedAttributesCount"
    ));
    assert!(is_snake_of("name", "name"));
    assert!(!is_snake_of("traceid", "traceId"));
    assert!(!is_snake_of("trace_id_", "traceId"));
    assert!(!is_snake_of("trace_", "traceId"));
}

#[test]
fn paths_format_with_dots_and_indexes() {
    let root = Path::ROOT;
    let a = root.key("resourceSpans");
    let b = a.index(0);
    let c = b.key("scopeSpans");
    let d = c.index(1);
    let e = d.key("traceId");
    assert_eq!(
        e.err("x").to_string(),
        "resourceSpans[0].scopeSpans[1].traceId: x"
    );
    assert_eq!(root.err("x").to_string(), "<root>: x");
}

#[test]
fn syntax_error_offset_points_at_the_bad_byte() {
    let body = b"{\n  \"a\": 1,\n  \"b\": x\n}";
    let JsonDecodeError::Syntax {
        line,
        column,
        offset,
        ..
    } = parse(body).unwrap_err()
    else {
        panic!("expected a syntax error");
    };
    assert_eq!((line, column), (3, 8));
    assert_eq!(body[offset], b'x');
}
