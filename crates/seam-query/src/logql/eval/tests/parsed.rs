//! Queries as users write them, through the real parser, so the evaluator and the parser agree
//! on the tree's shape (grouping, parentheses, literals, modifiers).

use super::super::super::parse;
use super::*;

const A: &str = r#"{app="api", env="prod"}"#;
const B: &str = r#"{app="web", env="prod"}"#;
const C: &str = r#"{app="api", env="dev"}"#;

fn q(s: &str) -> Expr {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn grafanas_health_check_and_literals() {
    let f = standard();
    assert_vector(&f.run(q("vector(1)+vector(1)"), at(60)), &[("{}", 2.0)]);
    assert_eq!(
        f.run(q("1+1"), at(60)).value,
        QueryValue::Scalar {
            timestamp_ns: 60 * S,
            value: 2.0
        }
    );
    assert_eq!(
        matrix(&f.run(q("(1 + 2) * 2"), span(0, 10, 10))),
        vec![("{}".to_string(), vec![(0, 6.0), (10, 6.0)])]
    );
}

#[test]
fn aggregations_as_written() {
    let f = standard();
    let all = r#"count_over_time({env=~".+"}[1m])"#;
    assert_vector(
        &f.run(q(&format!("sum by (env) ({all})")), at(60)),
        &[(r#"{env="dev"}"#, 2.0), (r#"{env="prod"}"#, 9.0)],
    );
    assert_vector(&f.run(q(&format!("sum({all})")), at(60)), &[("{}", 11.0)]);
    assert_vector(
        &f.run(q(&format!("avg without (env) ({all})")), at(60)),
        &[(r#"{app="api"}"#, 4.0), (r#"{app="web"}"#, 3.0)],
    );
    assert_vector(
        &f.run(q(&format!("topk(2, {all})")), at(60)),
        &[(A, 6.0), (B, 3.0)],
    );
    assert_vector(
        &f.run(q(&format!("sort_desc({all})")), at(60)),
        &[(A, 6.0), (B, 3.0), (C, 2.0)],
    );
    assert_vector(
        &f.run(
            q(r#"sum(count_over_time({env="prod"} |= "error" [30s] offset 20s))"#),
            at(60),
        ),
        &[("{}", 3.0)],
    );
    assert_vector(
        &f.run(q(r#"absent_over_time({app="nope"}[1m])"#), at(60)),
        &[(r#"{app="nope"}"#, 1.0)],
    );
}

#[test]
fn binary_operations_as_written() {
    let f = standard();
    let all = r#"count_over_time({env=~".+"}[1m])"#;
    assert_vector(
        &f.run(q(&format!("{all} > bool 2")), at(60)),
        &[(C, 0.0), (A, 1.0), (B, 1.0)],
    );
    assert_vector(
        &f.run(q(&format!("{all} > 2")), at(60)),
        &[(A, 6.0), (B, 3.0)],
    );
    assert_vector(
        &f.run(
            q(&format!("{all} / on(env) group_left sum by (env) ({all})")),
            at(60),
        ),
        &[(C, 1.0), (A, 6.0 / 9.0), (B, 3.0 / 9.0)],
    );
    assert_vector(
        &f.run(
            q(&format!(
                r#"{all} unless count_over_time({{env=~".+"}} |= "error" [30s])"#
            )),
            at(60),
        ),
        &[(C, 2.0)],
    );
    assert_vector(
        &f.run(
            q(&format!(
                r#"label_replace({all}, "svc", "$1-svc", "app", "(w.*)")"#
            )),
            at(60),
        ),
        &[
            (C, 2.0),
            (A, 6.0),
            (r#"{app="web", env="prod", svc="web-svc"}"#, 3.0),
        ],
    );
}

#[test]
fn unwrap_as_written() {
    let f = Fixture::new();
    let s: [StreamSpec<'_>; 1] = [(
        &[("app", "svc")],
        &[(60, "latency=4"), (70, "latency=1"), (80, "latency=3")],
    )];
    f.append(&s, &[]);
    assert_vector(
        &f.run(
            q(r#"max_over_time({app="svc"} | logfmt | unwrap latency [1m]) by (app)"#),
            at(80),
        ),
        &[(r#"{app="svc"}"#, 4.0)],
    );
    assert_vector(
        &f.run(
            q(r#"sum(sum_over_time({app="svc"} | logfmt | unwrap latency | __error__="" [1m]))"#),
            at(80),
        ),
        &[("{}", 8.0)],
    );
}
