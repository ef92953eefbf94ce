//! `show()` against Spark's own text: each file in `spark-show/` is what
//! PySpark 4.3 printed for a DataFrame (`spark-show/generate.py` makes
//! them); here DataFusion builds the same rows and types and ember's
//! formatter must print the same bytes.

use datafusion::prelude::SessionContext;
use ember_sql::datafusion;
use ember_sql::show::show_string;

/// The rows of each case, as DataFusion SQL, with Spark's `show` arguments.
const CASES: &[(&str, &str, usize, usize, bool)] = &[
    ("word_counts", "SELECT * FROM (VALUES ('hello', 2), ('to', 10), ('a', 1)) AS t(word, total)", 20, 20, false),
    (
        "strings",
        "SELECT * FROM (VALUES ('exactly twenty chars'), ('twenty one characters'), (''), \
         ('a much longer string than twenty characters'), (NULL), ('日本語のテキスト'), \
         (concat('tab', chr(9), 'here')), (concat('line', chr(10), 'break'))) AS t(s)",
        20, 20, false,
    ),
    (
        "strings_untruncated",
        "SELECT * FROM (VALUES ('a much longer string than twenty characters'), ('x'), (NULL), ('日本語')) AS t(s)",
        20, 0, false,
    ),
    ("truncate_3", "SELECT 'abcdef' AS s, 123456 AS n", 20, 3, false),
    ("truncate_8", "SELECT 'abcdefghijkl' AS s, 123456 AS n", 20, 8, false),
    (
        "numbers",
        "SELECT column1 AS i, CAST(column2 AS DOUBLE) AS f FROM (VALUES \
         (0, '0.0'), (-7, '-0.0'), (9223372036854775807, '1.0'), (1, '0.1'), (2, '1e7'), \
         (3, '9999999.0'), (4, '1e-3'), (5, '9.99e-4'), (6, '1.5e10'), (7, '123456.789'), \
         (8, 'NaN'), (9, 'inf'), (10, '-inf'), (11, '1e21'), (12, '2.5e-10'), (NULL, NULL), \
         (13, '100'), (14, '0.3333333333333333'))",
        20, 20, false,
    ),
    (
        "floats32",
        "SELECT CAST(column1 AS REAL) AS x FROM (VALUES ('1.5'), ('0.1'), ('1e10'), (NULL))",
        20, 20, false,
    ),
    (
        "ints",
        "SELECT CAST(column1 AS TINYINT) AS a, CAST(column2 AS SMALLINT) AS b, CAST(column3 AS INT) AS c, \
         column4 AS d FROM (VALUES (1, 2, 3, true), (-1, -2, -3, false), (NULL, NULL, NULL, NULL))",
        20, 20, false,
    ),
    ("many_rows", "SELECT value AS n, value * value AS sq FROM range(25)", 20, 20, false),
    ("one_row_shown", "SELECT value AS n, value * value AS sq FROM range(25)", 1, 20, false),
    ("exactly_twenty", "SELECT value AS n, value * value AS sq FROM range(20)", 20, 20, false),
    ("empty", "SELECT CAST(NULL AS VARCHAR) AS word, CAST(NULL AS BIGINT) AS total WHERE false", 20, 20, false),
    ("empty_n_limit", "SELECT CAST(NULL AS VARCHAR) AS word, CAST(NULL AS BIGINT) AS total WHERE false", 0, 20, false),
    (
        "nested",
        "SELECT * FROM (\
         SELECT 1 AS k, make_array(1, 2, 3) AS xs, map(['a'], [1]) AS m, named_struct('x', 1, 'y', 'b') AS st, \
           X'01AB' AS b, DATE '2024-02-29' AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts, \
           CAST('1.5' AS DECIMAL(38, 18)) AS dec \
         UNION ALL SELECT 2, arrow_cast(make_array(), 'List(Int64)'), map(arrow_cast(make_array(), 'List(Utf8)'), arrow_cast(make_array(), 'List(Int64)')), \
           named_struct('x', CAST(NULL AS BIGINT), 'y', CAST(NULL AS VARCHAR)), X'', DATE '1970-01-01', \
           TIMESTAMP '2024-01-02 03:04:05.12', CAST('-2' AS DECIMAL(38, 18)) \
         UNION ALL SELECT 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
         UNION ALL SELECT 4, make_array(NULL, 5), map(['k'], [NULL]), named_struct('x', 3, 'y', CAST(NULL AS VARCHAR)), \
           X'00', DATE '2000-12-31', TIMESTAMP '1999-12-31 23:59:59.000001', CAST('12345.678' AS DECIMAL(38, 18)) \
         ) ORDER BY k",
        20, 20, false,
    ),
    (
        "string_list",
        "SELECT make_array('a', NULL, 'c') AS xs, make_array(make_array(1), make_array(2, 3)) AS ys",
        20, 20, false,
    ),
    ("wide_header", "SELECT 1 AS a_rather_long_column_name, CAST(NULL AS VARCHAR) AS b", 20, 20, false),
    (
        "vertical",
        "SELECT * FROM (VALUES ('hello', 2), ('longer word', 10)) AS t(word, total)",
        20, 20, true,
    ),
    ("vertical_empty", "SELECT 'x' AS word WHERE false", 20, 20, true),
    ("unicode_header", "SELECT 'x' AS \"名前\"", 20, 20, false),
    ("sql_group", "SELECT 'a' AS word, count(*) AS total FROM range(3)", 20, 20, false),
    ("tuples", "SELECT * FROM (VALUES ('a', 1), ('b', 2)) AS t(_1, _2)", 20, 20, false),
];

fn spark(name: &str) -> String {
    let path = format!("{}/tests/spark-show/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn show_prints_what_spark_prints() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ctx = SessionContext::new();
    let mut failures = Vec::new();
    for (name, query, n, truncate, vertical) in CASES {
        let df = rt
            .block_on(ctx.sql(query))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The key the nested case orders by is not one of Spark's columns.
        let df = if *name == "nested" {
            df.drop_columns(&["k"]).unwrap()
        } else {
            df
        };
        let names: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = rt.block_on(df.collect()).unwrap();
        // Spark's text ends with println's own newline.
        let ours = show_string(&names, &batches, *n, *truncate, *vertical) + "\n";
        let want = spark(name);
        if ours != want {
            failures.push(format!("{name}:\n--- ember\n{ours}--- spark\n{want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    // Every golden file is used.
    let files = std::fs::read_dir(format!("{}/tests/spark-show", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "txt")
        })
        .count();
    assert_eq!(files, CASES.len());
}
