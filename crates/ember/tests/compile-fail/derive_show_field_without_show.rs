// #[derive(Show)] over a field whose type has no Show: the error names that
// type and how to give it one.
use ember::prelude::*;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Latency(u32);

#[derive(Clone, serde::Serialize, serde::Deserialize, Show)]
struct Request {
    path: String,
    latency: Latency,
}

fn main() {
    let request = Request { path: "/".into(), latency: Latency(3) };
    println!("{}", request.show());
}
