// A record type without serde's derives: the error names the type and the
// derive to add.
use ember::prelude::*;

#[derive(Clone)]
struct Click(u32);

fn main() {
    let ssc = StreamingContext::new(StreamingConf::new("clicks", seconds(1))).unwrap();
    ssc.define(|s| {
        s.queue_stream(vec![vec![1u32]], true, None).map(Click).count().print();
    })
    .unwrap();
}
