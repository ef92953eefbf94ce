// Golden-data generator: runs REAL Spark Streaming window operations on a
// queued input and prints the DStream's print(10000) output to stdout.
//
// Usage: java ... GoldenWindows <case-name> <case-dir>
//
// <case-dir>/input/*.txt (sorted by name) are the batches: one file = one
// batch, one line = one String record, an empty file = an empty batch. All
// batches are queued (queueStream, oneAtATime = true) before start(). The
// program stops once every output time <= firstBatch + (K-1)*1000 ms has
// completed, K = number of input files + 4, and then prints a marker line
//   @@GOLDEN first_batch_ms=<F> last_batch_ms=<F+(K-1)*1000>
// which normalize.py uses to cut and re-time the output. Nothing else in
// this program writes to stdout; Spark's logging goes to stderr (and is
// silenced by the log4j2 configuration passed by generate.sh).
//
// Run by generate.sh; see README.md beside this file.

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.streaming.Duration;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaDStream;
import org.apache.spark.streaming.api.java.JavaDStreamLike;
import org.apache.spark.streaming.api.java.JavaPairDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.scheduler.StreamingListener;
import org.apache.spark.streaming.scheduler.StreamingListenerBatchCompleted;

import scala.Tuple2;

public final class GoldenWindows {

    private static Duration s(long seconds) {
        return Durations.seconds(seconds);
    }

    /** Builds the case's pipeline; returns the stream to print(). */
    private static JavaDStreamLike<?, ?, ?> pipeline(String name, JavaDStream<String> lines) {
        switch (name) {
            case "window_3s_2s":
                return lines.window(s(3), s(2));
            case "window_2s_2s":
                return lines.window(s(2), s(2));
            case "window_of_window":
                return lines.window(s(2), s(1)).window(s(4), s(2));
            case "window_1s_2s":
                // A second output computes every batch: with the window alone
                // Spark computes (and so dequeues) only the batches a window
                // holds, which shifts the queued input.
                lines.foreachRDD(rdd -> { });
                return lines.window(s(1), s(2));
            case "window_4s_1s_filter_map":
                return lines.window(s(4), s(1))
                        .filter(w -> !w.equals("e"))
                        .map(w -> w.toUpperCase());
            case "window_of_window_3s_1s_2s_2s":
                return lines.window(s(3), s(1)).window(s(2), s(2));
            case "glom_sizes":
                return lines.glom().map(part -> (long) part.size());
            case "count_by_window_3s_1s":
                return lines.countByWindow(s(3), s(1));
            case "reduce_by_window_4s_2s":
                return lines.map(x -> (long) x.length())
                        .reduceByWindow((a, b) -> a + b, s(4), s(2));
            case "reduce_by_window_inverse_4s_2s":
                return lines.map(x -> (long) x.length())
                        .reduceByWindow((a, b) -> a + b, (a, b) -> a - b, s(4), s(2));
            case "reduce_by_key_and_window_3s_1s":
                return pairs(lines).reduceByKeyAndWindow((a, b) -> a + b, s(3), s(1));
            case "reduce_by_key_and_window_inverse_3s_1s":
                return pairs(lines).reduceByKeyAndWindow(
                        (a, b) -> a + b, (a, b) -> a - b, s(3), s(1));
            case "reduce_by_key_and_window_inverse_filter_3s_1s":
                return pairs(lines).reduceByKeyAndWindow(
                        (a, b) -> a + b, (a, b) -> a - b, s(3), s(1), 2, kv -> kv._2() > 0);
            case "reduce_by_key_and_window_5s_2s":
                return pairs(lines).reduceByKeyAndWindow((a, b) -> a + b, s(5), s(2));
            case "reduce_by_key_and_window_inverse_5s_2s":
                return pairs(lines).reduceByKeyAndWindow(
                        (a, b) -> a + b, (a, b) -> a - b, s(5), s(2));
            case "count_by_value_and_window_3s_2s":
                return lines.countByValueAndWindow(s(3), s(2));
            default:
                throw new IllegalArgumentException("unknown case: " + name);
        }
    }

    private static JavaPairDStream<String, Long> pairs(JavaDStream<String> lines) {
        return lines.mapToPair(w -> new Tuple2<>(w, 1L));
    }

    private static List<String> readLines(File f) throws IOException {
        List<String> out = new ArrayList<>();
        for (String l : Files.readAllLines(f.toPath(), StandardCharsets.UTF_8)) {
            out.add(l);
        }
        return out;
    }

    private static void deleteRecursively(Path p) {
        try {
            if (Files.isDirectory(p)) {
                try (var st = Files.list(p)) {
                    st.forEach(GoldenWindows::deleteRecursively);
                }
            }
            Files.deleteIfExists(p);
        } catch (IOException e) {
            // best effort
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: GoldenWindows <case-name> <case-dir>");
            System.exit(2);
        }
        final String name = args[0];
        final File caseDir = new File(args[1]);
        File[] inputs = new File(caseDir, "input").listFiles((d, n) -> n.endsWith(".txt"));
        if (inputs == null || inputs.length == 0) {
            throw new IllegalStateException("no input/*.txt in " + caseDir);
        }
        Arrays.sort(inputs, Comparator.comparing(File::getName));
        final int k = inputs.length + 4;

        SparkConf conf = new SparkConf()
                .setMaster("local[2]")
                .setAppName("ember-golden-" + name)
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1")
                .set("spark.sql.shuffle.partitions", "2");
        JavaSparkContext sc = new JavaSparkContext(conf);
        sc.setLogLevel("ERROR");
        JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.seconds(1));
        Path checkpointDir = Files.createTempDirectory("ember-golden-ckpt-");
        ssc.checkpoint(checkpointDir.toString());

        Queue<JavaRDD<String>> queue = new LinkedList<>();
        for (File f : inputs) {
            queue.add(sc.parallelize(readLines(f), 2));
        }
        JavaDStream<String> lines = ssc.queueStream(queue, true);
        JavaDStreamLike<?, ?, ?> out = pipeline(name, lines);
        out.print(10000);

        // Output happens only at multiples of the output stream's slide. We are
        // done once a completed batch leaves no further output time <= last.
        final long slideMs = out.dstream().slideDuration().milliseconds();
        final AtomicLong lastNeeded = new AtomicLong(Long.MAX_VALUE);
        final AtomicLong zeroMs = new AtomicLong(0);
        final CountDownLatch done = new CountDownLatch(1);
        ssc.addStreamingListener(new StreamingListener() {
            @Override
            public void onBatchCompleted(StreamingListenerBatchCompleted batch) {
                long t = batch.batchInfo().batchTime().milliseconds();
                // An output time (other outputs may complete batches in
                // between) whose next output time is past the last.
                boolean outputTime = (t - zeroMs.get()) % slideMs == 0;
                if (outputTime && t + slideMs > lastNeeded.get()) {
                    done.countDown();
                }
            }
        });

        ssc.start();
        // zeroTime is set synchronously by start(); the first base batch is
        // zeroTime + batchInterval.
        long zero = ssc.ssc().graph().zeroTime().milliseconds();
        zeroMs.set(zero);
        long first = zero + 1000L;
        long last = first + (k - 1) * 1000L;
        lastNeeded.set(last);

        boolean ok = done.await(180, TimeUnit.SECONDS);
        ssc.stop(true, false);
        System.out.flush();
        System.out.println("@@GOLDEN first_batch_ms=" + first + " last_batch_ms=" + last);
        System.out.flush();
        deleteRecursively(checkpointDir);
        if (!ok) {
            System.err.println("timed out waiting for batch " + last);
            System.exit(1);
        }
        System.exit(0);
    }
}
