//! SqlNetworkWordCount: counts the words of each second's text from a TCP
//! server with SQL — Spark's `SqlNetworkWordCount` example in ember. Each
//! batch's words become the table `words`, a query counts them, and the
//! result is printed in Spark's `show()` format.
//!
//! ```text
//! nc -lk 9999
//! cargo run --release --features sql --example sql_network_word_count -- localhost 9999
//! ```
//!
//! With no host and port it starts its own text source on a loopback port.
//! `--help` lists ember's flags (`--master local[N]`, `--batch-interval`,
//! `--no-ui`, ...).

mod common;

use clap::Parser;
use ember::prelude::*;
use ember::sql::{SqlError, SqlStream};
use ember::StreamingArgs;

/// Counts the words of the text a TCP server sends with SQL, every batch.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: common::Server,
    #[command(flatten)]
    ember: StreamingArgs,
}

/// One row of the `words` table: Spark's example's `case class Record`.
#[derive(Clone, Serialize, Deserialize)]
struct Record {
    word: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let conf = StreamingConf::new("SqlNetworkWordCount", seconds(1))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let (host, port) = cli.server.address()?;

    let ssc = StreamingContext::new(conf)?;
    ssc.define(move |s| {
        let words = s
            .socket_text_stream(&host, port)
            .flat_map(common::words)
            .map(|word| Record { word });
        words.table("words").foreach_batch_df(|df, time| {
            let counts = df.sql("select word, count(*) as total from words group by word")?;
            println!("========= {time} =========");
            counts.show()?;
            Ok::<_, SqlError>(())
        });
    })?;
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}
