// print() of a record type without Show: the error says how to get one.
use ember::prelude::*;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Click(u32);

fn main() {
    let ssc = StreamingContext::new(StreamingConf::new("clicks", seconds(1))).unwrap();
    ssc.define(|s| {
        s.queue_stream(vec![vec![1u32]], true, None).map(Click).print();
    })
    .unwrap();
}
