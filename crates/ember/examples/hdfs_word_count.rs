//! HdfsWordCount: counts the words of new text files in a directory —
//! Spark's `HdfsWordCount` example in ember, over a local directory or,
//! built with the `object-store` feature, an object store's prefix (with
//! `hdfs`, an HDFS directory).
//!
//! ```text
//! mkdir -p /tmp/ember-in
//! cargo run --release --example hdfs_word_count -- /tmp/ember-in
//! # in another shell: write a file elsewhere, then move it in
//! echo "hello world hello" > /tmp/f1 && mv /tmp/f1 /tmp/ember-in/
//! ```
//!
//! Over S3 (or an S3-compatible server: set `AWS_ENDPOINT`), with the
//! credentials and region from the usual environment variables:
//!
//! ```text
//! cargo run --release --features object-store --example hdfs_word_count -- s3://bucket/incoming/
//! aws s3 cp notes.txt s3://bucket/incoming/notes.txt
//! ```
//!
//! Over HDFS (the `hdfs` feature; the NameNode's settings from
//! `HADOOP_CONF_DIR` when it is a name service):
//!
//! ```text
//! cargo run --release --features hdfs --example hdfs_word_count -- hdfs://namenode:8020/user/me/incoming/
//! ```
//!
//! Only files that appear after the start are read, each once; names
//! starting with `.` or `_` are ignored. `--help` lists the flags:
//! `--master local[N]`, `--batch-interval 2s` (default 2 s, as Spark's
//! example), ...

mod common;

use clap::Parser;
use ember::prelude::*;
use ember::StreamingArgs;

/// Counts the words of the new text files in a directory, every batch.
#[derive(Parser)]
struct Cli {
    /// The directory to watch for new files (a path, or with the
    /// `object-store` feature an s3://, gs://, az:// or http(s):// URL)
    directory: String,
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // s3://, gs://, az://, http(s):// directories (the `object-store` feature).
    #[cfg(feature = "object-store")]
    ember::object_store::install();
    let conf = StreamingConf::new("HdfsWordCount", seconds(2))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let dir = cli.directory;

    let ssc = StreamingContext::new(conf)?;
    ssc.define(move |s| {
        let lines = s.text_file_stream(&dir);
        let words = lines.flat_map(common::words);
        words.map(|w| (w, 1u64)).reduce_by_key(|a, b| a + b).print();
    })?;
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}
