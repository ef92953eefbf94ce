// A program whose Cargo.toml names only `ember`: serde's derives come from
// the prelude and find serde through `ember::serde`, and `print()` takes the
// record through the derived Show.
use ember::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize, Show)]
#[serde(crate = "ember::serde")]
struct Click {
    user: String,
    page: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, Show)]
#[serde(crate = "ember::serde")]
enum Action {
    View(Click),
    Leave,
}

fn main() {
    let ssc = StreamingContext::new(StreamingConf::new("clicks", seconds(1))).unwrap();
    ssc.define(|s| {
        let click = Click { user: "ann".into(), page: None };
        let batches = vec![vec![Action::View(click), Action::Leave]];
        s.queue_stream(batches, true, None).print();
    })
    .unwrap();
}
