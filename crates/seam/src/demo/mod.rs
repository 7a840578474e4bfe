//! `seam demo`: a workload that shows trace stitching, and a scorer that measures it.
//!
//! - `seam demo mdso` plays the MDSO provisioning flow: Beorn (`beorn.create_network_service`)
//!   calls MDSO (`POST /bpocore/market/api/v1/resources`), whose scriptplan
//!   `CircuitDetailsCollector` calls Arda (`arda.get_topology`, `GET /api/v3/topologies/{circuit_id}`).
//!   Each service starts its own trace (no context propagation); the traces share only the
//!   `circuit_id` (as an attribute, as the `X-Circuit-Id` header attribute on Beorn's call, and in
//!   MDSO's log lines). Noise switches add what makes matching hard; see `seam demo mdso --help`.
//! - `seam demo score` fetches every generated trace raw (`?stitch=false`), collects the bridge
//!   spans Seam wrote (`synthetic=true`), and compares them with the truth file.
//!
//! # The truth file
//! JSON lines, written by `demo mdso` as flows are generated. Every line has a `kind`:
//! - `{"kind":"meta", "seed":S, "flows":N, ...}`: first line, the generator's settings.
//! - `{"kind":"trace", "trace_id":hex, "service":"beorn"|"mdso"|"arda", "flow":F|null,
//!   "circuit_id":id|null}`: every trace generated, including keyless noise traces (`flow` and
//!   `circuit_id` null). The scorer fetches each of them, so a bridge in any trace is seen.
//! - `{"kind":"link", "upstream_trace_id":hex, "downstream_trace_id":hex, "key":"circuit_id",
//!   "value":id, "upstream_service":"beorn", "downstream_service":"mdso", "flow":F,
//!   "noise":[...]}`: one per TRUE link, two per flow (beorn→mdso, mdso→arda). `flow` numbers
//!   flow instances (a concurrent twin is its own flow); `noise` tags what was done to that flow:
//!   `concurrent` (it shares its circuit with a twin a few seconds apart), `reused` (its circuit
//!   belonged to an earlier flow; its timestamps are shifted forward past the window), `late` (some
//!   of its spans were delayed), `keyless` (extra spans without keys in its traces).
//!
//! Lines are independent, so a reader may ignore kinds it does not know. The ids are hex, as
//! `GET /api/traces/{id}` takes them. The same seed gives the same ids: run again against the same
//! Seam with another seed.

mod http;
mod mdso;
mod score;

pub use mdso::MdsoArgs;
pub use score::ScoreArgs;

/// `seam demo ...`.
#[derive(clap::Subcommand, Debug)]
pub enum DemoCommand {
    /// Generate the MDSO flow: beorn -> mdso -> arda, each in its own trace, joined only by circuit ids.
    Mdso(MdsoArgs),
    /// Compare the bridges Seam made with the truth file.
    Score(ScoreArgs),
}

/// Runs a demo subcommand.
pub async fn run(cmd: DemoCommand) -> anyhow::Result<()> {
    match cmd {
        DemoCommand::Mdso(args) => mdso::run(args).await,
        DemoCommand::Score(args) => score::run(args).await,
    }
}
