//! SQL on every batch, at one and three workers, against expectations
//! computed here without SQL (counting in a map, joining by hand).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ember_core::testing::{collect_into, run_batches, run_local, run_local2};
use ember_core::{seconds, Error, ManualClock, StreamingConf, StreamingContext, Time};
use ember_sql::{SqlError, SqlStream};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Word {
    word: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct WordCount {
    word: String,
    total: i64,
}

/// Batches of words from a small generator (a linear congruential one:
/// the same words every run), some batches empty.
fn word_batches() -> Vec<Vec<Word>> {
    let vocabulary = [
        "to", "be", "or", "not", "that", "is", "the", "question", "日本", "",
    ];
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    [300, 0, 57, 1, 1000]
        .iter()
        .map(|&n| {
            (0..n)
                .map(|_| Word {
                    word: vocabulary[next() % vocabulary.len()].to_string(),
                })
                .collect()
        })
        .collect()
}

fn reference_counts(batch: &[Word]) -> Vec<WordCount> {
    let mut counts = BTreeMap::new();
    for w in batch {
        *counts.entry(w.word.clone()).or_insert(0i64) += 1;
    }
    counts
        .into_iter()
        .map(|(word, total)| WordCount { word, total })
        .collect()
}

#[test]
fn sql_word_count_equals_counting_at_one_and_three_workers() {
    let input = word_batches();
    let want: Vec<Vec<WordCount>> = input.iter().map(|b| reference_counts(b)).collect();
    for workers in [1, 3] {
        let mut got = run_local(workers, input.clone(), |words| {
            words
                .table("words")
                .sql::<WordCount>("SELECT word, count(*) AS total FROM words GROUP BY word")
        });
        got.iter_mut().for_each(|b| b.sort());
        assert_eq!(got, want, "local[{workers}]");
    }
}

#[test]
fn tuples_are_underscore_columns_and_plain_records_one_value_column() {
    let pairs = vec![vec![("a".to_string(), 3u32), ("b".to_string(), 4)], vec![]];
    for workers in [1, 3] {
        let got = run_local(workers, pairs.clone(), |s| {
            s.table("t")
                .sql::<(String, i64)>("SELECT _1, _2 * 10 FROM t ORDER BY _1")
        });
        assert_eq!(
            got,
            [vec![("a".to_string(), 30), ("b".to_string(), 40)], vec![]]
        );

        let lines = vec![vec!["x".to_string(), "yy".to_string(), "zzz".to_string()]];
        let got = run_local(workers, lines, |s| {
            s.table("lines")
                .sql::<i32>("SELECT sum(length(value)) FROM lines")
        });
        assert_eq!(got, [vec![6i32]]);
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Click {
    user: String,
    page: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Login {
    user: String,
    country: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Row3 {
    country: String,
    page: String,
    clicks: i64,
}

#[test]
fn two_streams_of_the_same_batch_join() {
    let click = |u: &str, p: &str| Click {
        user: u.into(),
        page: p.into(),
    };
    let login = |u: &str, c: &str| Login {
        user: u.into(),
        country: c.into(),
    };
    let clicks = vec![
        vec![
            click("ann", "home"),
            click("bob", "home"),
            click("ann", "buy"),
            click("cy", "home"),
        ],
        vec![click("ann", "home")],
        vec![],
    ];
    // ann's login is in batch 1 only: her batch-2 click finds nobody.
    let logins = vec![
        vec![login("ann", "fr"), login("bob", "de")],
        vec![login("bob", "de")],
        vec![],
    ];
    let want = {
        let mut all = Vec::new();
        for (cs, ls) in clicks.iter().zip(&logins) {
            let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
            for c in cs {
                for l in ls.iter().filter(|l| l.user == c.user) {
                    *counts
                        .entry((l.country.clone(), c.page.clone()))
                        .or_default() += 1;
                }
            }
            all.push(
                counts
                    .into_iter()
                    .map(|((country, page), clicks)| Row3 {
                        country,
                        page,
                        clicks,
                    })
                    .collect::<Vec<_>>(),
            );
        }
        all
    };
    for workers in [1, 3] {
        let mut got = run_local2(workers, clicks.clone(), logins.clone(), |c, l| {
            c.table("clicks").with_stream("logins", &l).sql::<Row3>(
                "SELECT country, page, count(*) AS clicks FROM clicks \
                 JOIN logins ON clicks.user = logins.user GROUP BY country, page",
            )
        });
        got.iter_mut().for_each(|b| b.sort());
        assert_eq!(got, want, "local[{workers}]");
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Labelled {
    word: String,
    label: String,
    total: i64,
}

#[test]
fn static_csv_and_parquet_tables_join_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("labels.csv");
    std::fs::write(&csv, "word,label\nto,prep\nbe,verb\nnot,adv\n").unwrap();
    // The same table as Parquet, written by DataFusion itself.
    let parquet = dir.path().join("labels.parquet");
    {
        use ember_sql::datafusion::prelude::*;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ctx = SessionContext::new();
        rt.block_on(async {
            ctx.register_csv("labels", csv.to_str().unwrap(), CsvReadOptions::new())
                .await
                .unwrap();
            let df = ctx.table("labels").await.unwrap();
            df.write_parquet(
                parquet.to_str().unwrap(),
                ember_sql::datafusion::dataframe::DataFrameWriteOptions::new()
                    .with_single_file_output(true),
                None,
            )
            .await
            .unwrap();
        });
    }
    let labels: BTreeMap<&str, &str> = [("to", "prep"), ("be", "verb"), ("not", "adv")].into();
    let input = word_batches();
    let want: Vec<Vec<Labelled>> = input
        .iter()
        .map(|b| {
            reference_counts(b)
                .into_iter()
                .filter_map(|wc| {
                    labels.get(wc.word.as_str()).map(|label| Labelled {
                        word: wc.word.clone(),
                        label: label.to_string(),
                        total: wc.total,
                    })
                })
                .collect()
        })
        .collect();
    let files = [(csv.clone(), false), (parquet.clone(), true)];
    for (workers, (file, parquet_file)) in [1, 3]
        .into_iter()
        .flat_map(|w| files.clone().map(|f| (w, f)))
    {
        let query = "SELECT words.word, label, count(*) AS total FROM words \
                     JOIN labels ON words.word = labels.word GROUP BY words.word, label";
        let mut got = run_local(workers, input.clone(), move |words| {
            let tables = words.table("words");
            let tables = if parquet_file {
                tables.with_parquet("labels", file.clone())
            } else {
                tables.with_csv("labels", file.clone())
            };
            tables.sql::<Labelled>(query)
        });
        got.iter_mut().for_each(|b| b.sort());
        assert_eq!(got, want, "local[{workers}], parquet {parquet_file}");
    }
}

#[test]
fn foreach_batch_df_sees_every_batch_and_queries_it() {
    let input = word_batches();
    for workers in [1, 3] {
        let clock = ManualClock::new();
        let conf = StreamingConf::new("sql-df", seconds(1))
            .master(&format!("local[{workers}]"))
            .unwrap()
            .ui(None);
        let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
        let seen: Arc<Mutex<Vec<(Time, usize, String)>>> = Arc::default();
        let sink = seen.clone();
        let queued = input.clone();
        ssc.define(move |s| {
            let sink = sink.clone();
            s.queue_stream(queued.clone(), true, None)
                .table("words")
                .foreach_batch_df(move |df, time| {
                    let top = df.sql(
                        "SELECT word, count(*) AS total FROM words GROUP BY word \
                         ORDER BY total DESC, word LIMIT 2",
                    )?;
                    sink.lock()
                        .unwrap()
                        .push((time, df.count()?, top.show_string(20, 20, false)?));
                    Ok::<_, SqlError>(())
                });
        })
        .unwrap();
        ssc.start().unwrap();
        for i in 1..=input.len() as u64 {
            clock.advance(seconds(1));
            ssc.await_batch(Time::from_millis(i * 1000)).unwrap();
        }
        ssc.stop(false).unwrap();
        let seen = seen.lock().unwrap();
        let times: Vec<Time> = seen.iter().map(|(t, ..)| *t).collect();
        let want_times: Vec<Time> = (1..=input.len() as u64)
            .map(|i| Time::from_millis(i * 1000))
            .collect();
        assert_eq!(
            times, want_times,
            "local[{workers}]: one call per batch, empty ones too"
        );
        for ((_, rows, text), batch) in seen.iter().zip(&input) {
            assert_eq!(*rows, batch.len());
            let mut counts = reference_counts(batch);
            counts.sort_by(|a, b| b.total.cmp(&a.total).then(a.word.cmp(&b.word)));
            let lines: Vec<&str> = text.lines().collect();
            let shown: Vec<(String, i64)> = lines[3..lines.len() - 1]
                .iter()
                .map(|l| {
                    let cells: Vec<&str> = l.trim_matches('|').split('|').collect();
                    (
                        cells[0].trim().to_string(),
                        cells[1].trim().parse().unwrap(),
                    )
                })
                .collect();
            let want: Vec<(String, i64)> = counts
                .iter()
                .take(2)
                .map(|c| (c.word.clone(), c.total))
                .collect();
            assert_eq!(shown, want, "local[{workers}]");
        }
    }
}

/// Runs `query` over one batch of words and returns how the context ended.
fn failing(query: &'static str) -> Error {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("sql-errors", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.define(move |s| {
        let words = s.queue_stream(vec![vec![Word { word: "a".into() }]], true, None);
        words
            .table("words")
            .sql::<WordCount>(query)
            .foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    ssc.await_termination().expect_err("the query fails")
}

#[test]
fn sql_mistakes_stop_the_context_naming_the_batch_and_the_query() {
    let cases = [
        (
            "SELEC word FROM words",
            "found: SELEC at Line: 1, Column: 1",
        ),
        (
            "SELECT word, count(*) AS total FROM nowhere GROUP BY word",
            "nowhere",
        ),
        ("SELECT wrd AS word, 1 AS total FROM words", "wrd"),
        ("SELECT word, word + 1 AS total FROM words", "word"),
        ("SELECT word, 'many' AS total FROM words", "do not fit"),
        ("SELECT word FROM words", "do not fit"),
    ];
    for (query, mentions) in cases {
        let e = failing(query);
        match &e {
            Error::User { operator, time, .. } => {
                assert_eq!(
                    (operator.as_str(), *time),
                    ("sql", Time::from_millis(1000)),
                    "{query}"
                )
            }
            other => panic!("{query}: {other:?}"),
        }
        let sql = e.downcast_ref::<SqlError>().expect("a SqlError inside");
        let text = e.to_string();
        assert!(text.contains(query), "{query}: {text}");
        assert!(
            text.to_lowercase().contains(&mentions.to_lowercase()),
            "{query}: {text}"
        );
        if mentions == "do not fit" {
            assert!(matches!(sql, SqlError::Rows { .. }), "{query}: {sql:?}");
        } else {
            assert!(matches!(sql, SqlError::Query { .. }), "{query}: {sql:?}");
        }
    }
}

#[test]
fn a_missing_static_file_names_the_table_and_the_path() {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("sql-static", seconds(1))
        .master("local[1]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.define(|s| {
        let words = s.queue_stream(vec![vec![Word { word: "a".into() }]], true, None);
        words
            .table("words")
            .with_csv("labels", "/nonexistent/labels.csv")
            .sql::<WordCount>("SELECT word, 1 AS total FROM words")
            .foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    let e = ssc.await_termination().expect_err("no such file");
    assert!(
        matches!(e.downcast_ref::<SqlError>(), Some(SqlError::Static { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("/nonexistent/labels.csv"), "{e}");
}

#[test]
fn no_query_text_panics() {
    let deep = format!(
        "SELECT {}1{} FROM words",
        "(".repeat(20_000),
        ")".repeat(20_000)
    );
    let long_in = format!(
        "SELECT word FROM words WHERE word IN ({})",
        vec!["'x'"; 50_000].join(",")
    );
    let hostile: Vec<String> = vec![
        String::new(),
        ";;;".into(),
        "\u{0}\u{1}".into(),
        "SELECT 'unterminated FROM words".into(),
        "SELECT * FROM words; DROP TABLE words".into(),
        "SELECT 1/0 FROM words".into(),
        "SELECT CAST('x' AS INT) FROM words".into(),
        "SELECT word FROM words ORDER BY 99".into(),
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r".into(),
        "SELECT repeat(word, -1) FROM words".into(),
        "SELECT substr(word, 9223372036854775807, -9223372036854775808) FROM words".into(),
        "SELECT 9223372036854775807 + 1 FROM words".into(),
        "SELECT 💥 FROM words".into(),
        deep,
        long_in,
    ];
    let outcomes: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = outcomes.clone();
    let hostile_in = hostile.clone();
    let got = run_batches(2, 1, move |s, out| {
        let words = s.queue_stream(vec![vec![Word { word: "a".into() }]], true, None);
        let queries = hostile_in.clone();
        let sink = sink.clone();
        words.table("words").foreach_batch_df(move |df, _| {
            for q in &queries {
                let outcome = match df.sql(q).and_then(|f| f.batches()) {
                    Ok(_) => "ok".to_string(),
                    Err(SqlError::Panicked { .. }) => "panicked".to_string(),
                    Err(e) => format!("error: {e}"),
                };
                sink.lock().unwrap().push(outcome);
            }
            Ok::<_, SqlError>(())
        });
        collect_into(&s.queue_stream(vec![vec![1u8]], true, None), out);
    });
    assert_eq!(got, [vec![1u8]]);
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), hostile.len());
    for (q, outcome) in hostile.iter().zip(outcomes.iter()) {
        assert!(
            !outcome.starts_with("panicked"),
            "{}: {outcome}",
            &q[..q.len().min(60)]
        );
    }
}

/// A value serde_arrow cannot describe from its type alone: an untagged
/// enum, whose column type comes from the first records seen.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Reading {
    Number(i64),
    Text(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Sensor {
    word: String,
    reading: Reading,
}

#[test]
fn columns_traced_from_records_work_and_a_later_misfit_is_an_error() {
    let s = |w: &str, r: Reading| Sensor {
        word: w.into(),
        reading: r,
    };
    let ok = vec![
        vec![],
        (0..30)
            .map(|i| s(if i % 3 == 0 { "a" } else { "b" }, Reading::Number(i)))
            .collect::<Vec<_>>(),
    ];
    // Expected by hand: a holds 0, 3, ..., 27 (sum 135), b the other 20 (sum 300).
    let want = vec![
        vec![],
        vec![
            WordCount {
                word: "a".into(),
                total: 135,
            },
            WordCount {
                word: "b".into(),
                total: 300,
            },
        ],
    ];
    for workers in [1, 3] {
        let got = run_local(workers, ok.clone(), |sensors| {
            sensors.table("sensors").sql::<WordCount>(
                "SELECT word, sum(reading) AS total FROM sensors GROUP BY word ORDER BY word",
            )
        });
        assert_eq!(got, want, "local[{workers}]");
    }

    let clock = ManualClock::new();
    let conf = StreamingConf::new("sql-misfit", seconds(1))
        .master("local[3]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.define(move |sc| {
        let batches = vec![
            vec![s("a", Reading::Number(1))],
            vec![s("a", Reading::Text("high".into()))],
        ];
        sc.queue_stream(batches, true, None)
            .table("sensors")
            .sql::<WordCount>("SELECT word, sum(reading) AS total FROM sensors GROUP BY word")
            .foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(1000)).unwrap();
    clock.advance(seconds(1));
    let e = ssc
        .await_termination()
        .expect_err("a text reading in a number column");
    assert!(
        matches!(&e, Error::User { operator, time, .. } if operator == "sql" && *time == Time::from_millis(2000)),
        "{e:?}"
    );
    assert!(
        matches!(e.downcast_ref::<SqlError>(), Some(SqlError::Records(_))),
        "{e:?}"
    );
}
