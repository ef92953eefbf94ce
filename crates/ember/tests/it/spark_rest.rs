//! Spark's streaming REST API as a Spark client reads it: the paths under
//! `/api/v1/applications/{appId}/streaming/`, Spark's field names and
//! types, `?status=` filters and Spark's dates, checked against what a
//! real TCP server sent in waves of different sizes; every batch's delays
//! add up; the OpenAPI description lists every endpoint and each answers;
//! `/metrics` histograms count every batch.

use ember::prelude::*;
use serde_json::Value;

use super::ui::{
    at_one_moment, await_counted, conf, f64_field, get_json, get_metrics, http_get, send_waves,
    u64_field, wave_server, word_count,
};

/// Spark's date format, `yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'`, as epoch ms:
/// an independent reading (days counted year by year and month by month).
fn parse_spark_date(s: &str) -> u64 {
    let bad = format!("not a Spark date: {s:?}");
    let rest = s.strip_suffix("GMT").expect(&bad);
    let (date, time) = rest.split_once('T').expect(&bad);
    let d: Vec<u64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, milli) = time.split_once('.').expect(&bad);
    let t: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    assert_eq!((d.len(), t.len(), milli.len()), (3, 3, 3), "{s:?}");
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = (1970..d[0])
        .map(|y| if leap(y) { 366 } else { 365 })
        .sum::<u64>();
    let month_days = [
        31,
        if leap(d[0]) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += month_days[..(d[1] - 1) as usize].iter().sum::<u64>() + d[2] - 1;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + milli.parse::<u64>().unwrap()
}

#[test]
fn spark_date_reader_agrees_with_known_dates() {
    assert_eq!(parse_spark_date("1970-01-01T00:00:00.000GMT"), 0);
    // `date -u -d @951868799`: Tue Feb 29 23:59:59 UTC 2000.
    assert_eq!(
        parse_spark_date("2000-02-29T23:59:59.999GMT"),
        951_868_799_999
    );
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get(name)
        .unwrap_or_else(|| panic!("no `{name}` in {v:#}"))
}

#[test]
fn a_spark_client_reads_statistics_receivers_batches_and_operations() {
    let (port, waves, server) = wave_server();
    let ssc = StreamingContext::new(conf("spark-rest")).unwrap();
    let seen = word_count(&ssc, port, Some("counts"));
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    let first = ssc.first_batch_time().unwrap();

    // Waves of varied sizes, one after each of the first batches (a batch
    // with nothing in between).
    let sizes = [1500usize, 0, 7, 900, 1];
    let lines = sizes
        .iter()
        .enumerate()
        .map(|(w, size)| (0..*size).map(|i| format!("w{w} n{i}")).collect())
        .collect();
    let sent = send_waves(&ssc, &waves, first, lines);
    let n = sent.len() as u64;
    await_counted(&ssc, &seen, &sent);

    // The application, as Spark lists it.
    let apps = get_json(&base, "/api/v1/applications");
    let apps = apps.as_array().expect("a list of applications");
    assert_eq!(apps.len(), 1, "{apps:#?}");
    assert_eq!(apps[0]["name"], "spark-rest");
    let app_id = apps[0]["id"].as_str().expect("an id").to_string();
    let attempt = &apps[0]["attempts"][0];
    let start = parse_spark_date(field(attempt, "startTime").as_str().unwrap());
    assert_eq!(start, u64_field(attempt, "startTimeEpoch"), "{attempt:#}");
    assert_eq!(
        get_json(&base, &format!("/api/v1/applications/{app_id}"))["id"],
        app_id.as_str()
    );
    let api = format!("/api/v1/applications/{app_id}/streaming");
    assert_eq!(
        http_get(&base, "/api/v1/applications/local-1/streaming/statistics").status,
        404
    );

    // Statistics: read around the batches so that both name one moment.
    let (stats, batches) = at_one_moment(&base, &format!("{api}/statistics"), || {
        get_json(&base, &format!("{api}/batches"))
    });
    assert_eq!(u64_field(&stats, "batchDuration"), super::ui::INTERVAL_MS);
    assert_eq!(u64_field(&stats, "numReceivedRecords"), n, "{stats:#}");
    assert_eq!(u64_field(&stats, "numProcessedRecords"), n, "{stats:#}");
    assert_eq!(u64_field(&stats, "numReceivers"), 1);
    assert_eq!(u64_field(&stats, "numActiveReceivers"), 1);
    assert_eq!(u64_field(&stats, "numInactiveReceivers"), 0);
    parse_spark_date(field(&stats, "startTime").as_str().unwrap());
    for avg in ["avgSchedulingDelay", "avgProcessingTime", "avgTotalDelay"] {
        assert!(
            field(&stats, avg).is_u64(),
            "{avg} is whole ms in Spark: {stats:#}"
        );
    }
    assert!(field(&stats, "avgInputRate").is_number());

    // Batches: Spark's fields; the ids are the batch times; newest first.
    let list = batches.as_array().unwrap();
    let completed: Vec<&Value> = list.iter().filter(|b| b["status"] == "COMPLETED").collect();
    assert_eq!(
        completed.len() as u64,
        u64_field(&stats, "numRetainedCompletedBatches"),
        "{stats:#}"
    );
    let ids: Vec<u64> = list.iter().map(|b| u64_field(b, "batchId")).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {ids:?}"
    );
    let mut input = 0;
    for b in &completed {
        let id = u64_field(b, "batchId");
        assert_eq!(
            parse_spark_date(b["batchTime"].as_str().unwrap()),
            id,
            "{b:#}"
        );
        assert_eq!(u64_field(b, "batchDuration"), super::ui::INTERVAL_MS);
        for f in ["schedulingDelay", "processingTime", "totalDelay"] {
            assert!(field(b, f).is_u64(), "{f}: {b:#}");
        }
        assert_eq!(u64_field(b, "numTotalOutputOps"), 2, "{b:#}");
        assert_eq!(u64_field(b, "numCompletedOutputOps"), 2, "{b:#}");
        assert_eq!(u64_field(b, "numFailedOutputOps"), 0, "{b:#}");
        assert!(b.get("firstFailureReason").is_none(), "{b:#}");
        input += u64_field(b, "inputSize");
        // The same batch alone, and its operations.
        assert_eq!(&get_json(&base, &format!("{api}/batches/{id}")), *b);
        let ops = get_json(&base, &format!("{api}/batches/{id}/operations"));
        let ops = ops.as_array().unwrap();
        assert_eq!(ops.len(), 2, "{ops:#?}");
        for op in ops {
            let op_id = u64_field(op, "outputOpId");
            let start = parse_spark_date(op["startTime"].as_str().unwrap());
            let end = parse_spark_date(op["endTime"].as_str().unwrap());
            assert_eq!(end - start, u64_field(op, "duration"), "{op:#}");
            assert!(op["name"].is_string() && op["description"].is_string());
            assert_eq!(
                &get_json(&base, &format!("{api}/batches/{id}/operations/{op_id}")),
                op
            );
        }
        assert_eq!(
            http_get(&base, &format!("{api}/batches/{id}/operations/7")).status,
            404
        );
    }
    // Every batch is still retained (a few dozen at most): all were counted.
    assert_eq!(input, n, "sum of inputSize over the COMPLETED batches");
    let sizes_seen: Vec<u64> = completed
        .iter()
        .map(|b| u64_field(b, "inputSize"))
        .collect();
    for size in sizes.iter().filter(|s| **s > 0) {
        assert!(
            sizes_seen.contains(&(*size as u64)),
            "no batch of {size} records in {sizes_seen:?}"
        );
    }

    // ?status= filters, case ignored, repeated for several.
    let only = get_json(&base, &format!("{api}/batches?status=completed"));
    assert!(only
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["status"] == "COMPLETED"));
    assert!(only.as_array().unwrap().len() >= completed.len());
    let both = get_json(
        &base,
        &format!("{api}/batches?status=QUEUED&status=PROCESSING"),
    );
    assert!(both
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["status"] == "QUEUED" || b["status"] == "PROCESSING"));
    let bad = http_get(&base, &format!("{api}/batches?status=DONE"));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("COMPLETED"), "{}", bad.body);
    assert_eq!(http_get(&base, &format!("{api}/batches/12")).status, 404);
    assert_eq!(http_get(&base, &format!("{api}/batches/x")).status, 404);

    // Receivers.
    let receivers = get_json(&base, &format!("{api}/receivers"));
    let r = &receivers.as_array().unwrap()[0];
    assert_eq!(
        r["streamName"],
        format!("socket_text_stream(127.0.0.1:{port})").as_str()
    );
    assert_eq!(r["isActive"], true);
    let rates = r["eventRates"].as_array().unwrap();
    let rated: f64 = rates.iter().map(|p| p[1].as_f64().unwrap()).sum();
    // Rates are records per second of each batch: their sum over the
    // retained batches is the records times 1000 / interval.
    let expected = n as f64 * 1000.0 / super::ui::INTERVAL_MS as f64;
    assert!(
        (rated - expected).abs() < 1e-6,
        "{rated} vs {expected}: {r:#}"
    );
    let id = u64_field(r, "streamId");
    assert_eq!(&get_json(&base, &format!("{api}/receivers/{id}")), r);
    assert_eq!(
        http_get(&base, &format!("{api}/receivers/{}", id + 1)).status,
        404
    );

    // ember's own batches: the delays (ms with µs precision) add up, by
    // Spark's definitions plus the time from the batch time to the
    // submission, and agree with the whole-ms times.
    let own = get_json(&base, "/api/v1/streaming/batches");
    for b in own
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "COMPLETED")
    {
        let start = u64_field(b, "processingStartTime");
        let end = u64_field(b, "processingEndTime");
        let submitted = u64_field(b, "submissionTime");
        let near = |precise: f64, whole: u64| (precise - whole as f64).abs() < 1.0;
        assert!(
            near(f64_field(b, "schedulingDelay"), start - submitted),
            "{b:#}"
        );
        assert!(near(f64_field(b, "processingTime"), end - start), "{b:#}");
        let parts = f64_field(b, "submissionDelay")
            + f64_field(b, "schedulingDelay")
            + f64_field(b, "processingTime");
        assert!((parts - f64_field(b, "totalDelay")).abs() < 1e-6, "{b:#}");
    }

    // /metrics: every completed batch is in each delay histogram.
    let (stats, metrics) =
        at_one_moment(&base, &format!("{api}/statistics"), || get_metrics(&base));
    let batches_run = u64_field(&stats, "numTotalCompletedBatches") as f64;
    for h in [
        "submission_delay",
        "scheduling_delay",
        "processing_time",
        "total_delay",
    ] {
        let name = format!("ember_batch_{h}_seconds");
        assert_eq!(
            metrics.get(&format!("{name}_count")),
            Some(&batches_run),
            "{metrics:#?}"
        );
        assert_eq!(
            metrics.get(&format!("{name}_bucket{{le=\"+Inf\"}}")),
            Some(&batches_run),
            "{metrics:#?}"
        );
    }
    assert_eq!(metrics.get("ember_batches_failed_total"), Some(&0.0));
    assert_eq!(
        metrics.get("ember_records_received_total"),
        Some(&(n as f64))
    );
    let info = format!(
        "ember_info{{app=\"spark-rest\",version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(metrics.get(&info), Some(&1.0), "{metrics:#?}");
    assert!(metrics
        .get("process_resident_memory_bytes")
        .is_some_and(|v| *v > 0.0));
    assert!(metrics
        .get("process_cpu_seconds_total")
        .is_some_and(|v| *v > 0.0));

    // The OpenAPI description: every path it lists answers with JSON.
    let spec = get_json(&base, "/api/v1/openapi.json");
    let batch = u64_field(completed[0], "batchId");
    let paths: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    assert!(paths.len() >= 16, "{paths:?}");
    for p in &paths {
        let concrete = p
            .replace("{appId}", &app_id)
            .replace("{batchId}", &batch.to_string())
            .replace("{streamId}", "0")
            .replace("{outputOpId}", "0")
            .replace("{id}", "0");
        let r = http_get(&base, &concrete);
        assert_eq!(r.status, 200, "{p} as {concrete}: {}", r.body);
        let _: Value =
            serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{concrete}: not JSON ({e})"));
    }

    ssc.stop(false).unwrap();
    drop(waves);
    drop(server.join().unwrap());
}
