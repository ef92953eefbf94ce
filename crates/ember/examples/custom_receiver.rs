//! CustomReceiver: a receiver of the program's own, on ember's public
//! `Receiver` interface — Spark's `CustomReceiver` example, but following a
//! growing file (as `tail -F` does) instead of a socket. It counts the words
//! of the lines appended to the file every second.
//!
//! ```text
//! cargo run --release --example custom_receiver -- /var/log/app.log
//! echo "hello world" >> /var/log/app.log      # in another terminal
//! ```
//!
//! With no file it appends lines to a temporary file of its own, so one
//! command shows it working:
//!
//! ```text
//! cargo run --release --example custom_receiver
//! ```
//!
//! The receiver only reads and stores; ember gives it what every receiver
//! gets: buffering, `--max-rate N` and `--backpressure`, its row in the
//! Streaming page's receiver table (<http://127.0.0.1:4040/streaming>), and
//! restarts: while the file is missing, or after it was truncated (log
//! rotation), the receiver reports why and starts again a second later.
//! Ctrl-C stops it gracefully.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ember::prelude::*;
use ember::{Received, Receiver, ReceiverContext, StreamingArgs};

/// Follows a file: the lines appended to it after it was first opened.
struct FileTail {
    path: PathBuf,
    /// Where reading goes on after a restart (`None`: from the end).
    offset: Option<u64>,
}

impl Receiver for FileTail {
    type Record = String;

    fn name(&self) -> String {
        format!("tail({})", self.path.display())
    }

    fn receive(&mut self, ctx: &mut ReceiverContext<'_, String>) -> Received {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) => {
                return ctx.restart_after(
                    format!("cannot open {}: {e}", self.path.display()),
                    Duration::from_secs(1),
                )
            }
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        // First start, or the file was truncated: from its end now.
        let mut offset = self.offset.filter(|o| *o <= len).unwrap_or(len);
        if let Err(e) = file.seek(SeekFrom::Start(offset)) {
            return ctx.restart(format!("cannot seek in {}: {e}", self.path.display()));
        }
        ctx.report_started();
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        while !ctx.is_stopped() {
            match reader.read_line(&mut line) {
                // A whole line: store it without its end.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    offset += line.len() as u64;
                    self.offset = Some(offset);
                    let text = line.trim_end_matches(['\n', '\r']).to_string();
                    line.clear();
                    if !ctx.store(text) {
                        return Received::Stopped;
                    }
                }
                // At the end of the file (a partial line waits for its end):
                // hand over what was stored, look again shortly.
                Ok(_) => {
                    let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
                    if len < offset {
                        return ctx.restart_after("the file was truncated", Duration::from_secs(1));
                    }
                    if !ctx.flush() {
                        return Received::Stopped;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return ctx.restart(format!("reading {} failed: {e}", self.path.display()))
                }
            }
        }
        Received::Stopped
    }
}

/// Appends a few lines a second to a new temporary file: the example's own
/// input when no file is given.
fn demo_file() -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let path =
        std::env::temp_dir().join(format!("ember-custom-receiver-{}.log", std::process::id()));
    let mut out = File::create(&path)?;
    std::thread::spawn(move || {
        let text = ["the quick brown fox", "jumps over the lazy dog", "the end"];
        for i in 0usize.. {
            if writeln!(out, "{}", text[i % text.len()]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    Ok(path)
}

/// Counts the words of the lines appended to a file, every batch.
#[derive(Parser)]
struct Cli {
    /// The file to follow [default: a temporary file this example writes]
    file: Option<PathBuf>,
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let conf = StreamingConf::new("CustomReceiver", seconds(1))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let (path, own) = match cli.file {
        Some(file) => (file, false),
        None => {
            let path = demo_file()?;
            eprintln!(
                "no file given: following {}, which this example writes",
                path.display()
            );
            (path, true)
        }
    };

    let ssc = StreamingContext::new(conf)?;
    let file = path.clone();
    ssc.define(move |s| {
        let lines = s.receiver_stream(FileTail {
            path: file.clone(),
            offset: None,
        });
        let words = lines.flat_map(common::words);
        words.map(|w| (w, 1u64)).reduce_by_key(|a, b| a + b).print();
    })?;
    ssc.start()?;
    let ended = ssc.await_termination();
    if own {
        let _ = std::fs::remove_file(&path);
    }
    Ok(ended?)
}
