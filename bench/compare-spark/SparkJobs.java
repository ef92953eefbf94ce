// Spark's side of the ember-vs-Spark comparison (see README.md beside this
// file): the three jobs as a plain JVM program against the jars pyspark
// ships, reading lines from `ember-bench serve` over loopback TCP.
//
// Usage: java ... SparkJobs <wordcount|window|state> <host> <port> <master>
//                           <interval ms> <seconds> <checkpoint dir>
//
// stdout gets only machine-readable lines (Spark's logging goes to stderr):
//   JVMSTART <wall ms the JVM started>
//   STARTED <wall ms after ssc.start()> first_batch <batch ms>
//   OUT <batch ms> <wall ms> <words> <keys>      (from the output operation)
//   DONE <batch ms> <wall ms processing ended> <numRecords> <scheduling delay>
//        <processing delay> <total delay>        (from a StreamingListener)
// After <seconds> batch intervals it halts the JVM (no graceful stop).

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.Optional;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.streaming.Duration;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.Time;
import org.apache.spark.streaming.api.java.JavaPairDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.scheduler.BatchInfo;
import org.apache.spark.streaming.scheduler.StreamingListener;
import org.apache.spark.streaming.scheduler.StreamingListenerBatchCompleted;

import scala.Tuple2;

public final class SparkJobs {

    private static synchronized void emit(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static long opt(scala.Option<Object> o) {
        return o.isDefined() ? ((Long) o.get()) : -1L;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 7) {
            System.err.println("usage: SparkJobs <wordcount|window|state> <host> <port> <master> "
                    + "<interval ms> <seconds> <checkpoint dir>");
            System.exit(2);
        }
        emit("JVMSTART " + ManagementFactory.getRuntimeMXBean().getStartTime());
        final String job = args[0];
        final String host = args[1];
        final int port = Integer.parseInt(args[2]);
        final String master = args[3];
        final long intervalMs = Long.parseLong(args[4]);
        final long seconds = Long.parseLong(args[5]);
        final String checkpointDir = args[6];

        SparkConf conf = new SparkConf()
                .setMaster(master)
                .setAppName("ember-compare-" + job)
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1")
                .set("spark.serializer", "org.apache.spark.serializer.KryoSerializer");
        JavaSparkContext sc = new JavaSparkContext(conf);
        sc.setLogLevel("ERROR");
        JavaStreamingContext ssc = new JavaStreamingContext(sc, new Duration(intervalMs));
        // updateStateByKey and the inverse reduceByKeyAndWindow require a
        // checkpoint directory; word count does without (with one, Spark
        // would also write metadata checkpoints every batch).
        if (!job.equals("wordcount")) {
            ssc.checkpoint(checkpointDir);
        }

        JavaPairDStream<String, Long> pairs = ssc
                .socketTextStream(host, port, StorageLevel.MEMORY_ONLY())
                .flatMap(l -> Arrays.asList(l.split(" ")).iterator())
                .mapToPair(w -> new Tuple2<>(w, 1L));
        JavaPairDStream<String, Long> counts;
        switch (job) {
            case "wordcount":
                counts = pairs.reduceByKey((a, b) -> a + b);
                break;
            case "window":
                counts = pairs.reduceByKeyAndWindow(
                        (a, b) -> a + b, (a, b) -> a - b,
                        Durations.seconds(30), Durations.seconds(10),
                        sc.defaultParallelism(), kv -> kv._2() > 0);
                break;
            case "state":
                counts = pairs.updateStateByKey((List<Long> vs, Optional<Long> old) -> {
                    long s = old.isPresent() ? old.get() : 0L;
                    for (Long v : vs) {
                        s += v;
                    }
                    return Optional.of(s);
                });
                break;
            default:
                throw new IllegalArgumentException("unknown job: " + job);
        }
        // The cheap output: one action summing the counts and counting keys.
        counts.foreachRDD((JavaPairRDD<String, Long> rdd, Time time) -> {
            long[] r = rdd.aggregate(new long[2],
                    (acc, kv) -> {
                        acc[0] += kv._2();
                        acc[1] += 1;
                        return acc;
                    },
                    (a, b) -> {
                        a[0] += b[0];
                        a[1] += b[1];
                        return a;
                    });
            emit("OUT " + time.milliseconds() + " " + System.currentTimeMillis() + " " + r[0]
                    + " " + r[1]);
        });
        ssc.addStreamingListener(new StreamingListener() {
            @Override
            public void onBatchCompleted(StreamingListenerBatchCompleted batch) {
                BatchInfo b = batch.batchInfo();
                emit("DONE " + b.batchTime().milliseconds() + " " + opt(b.processingEndTime())
                        + " " + b.numRecords() + " " + opt(b.schedulingDelay()) + " "
                        + opt(b.processingDelay()) + " " + opt(b.totalDelay()));
            }
        });

        ssc.start();
        long first = ssc.ssc().graph().zeroTime().milliseconds() + intervalMs;
        emit("STARTED " + System.currentTimeMillis() + " first_batch " + first);
        long until = first + seconds * intervalMs;
        while (System.currentTimeMillis() < until) {
            Thread.sleep(100);
        }
        Runtime.getRuntime().halt(0);
    }
}
