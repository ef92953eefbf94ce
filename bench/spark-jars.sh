# Sourced by the scripts that run real Apache Spark (bench/compare-spark/run.sh,
# crates/ember/tests/golden/generate.sh): Spark's jars from PyPI's pyspark
# (no Python in the measured or compared path), and the JVM flags Spark's
# launcher passes on Java 17.
#
#   spark_jars VENV [OTHER_VENV]  sets JARS to the jars of pyspark
#       $PYSPARK_VERSION, installed into VENV unless VENV or OTHER_VENV
#       already has that version, and SPARK_VENV to the venv used.
#   SPARK_JAVA17_OPTS             an array of JVM flags.

PYSPARK_VERSION=${PYSPARK_VERSION:-3.5.5}

has_pyspark() {
    [ -x "$1/bin/python" ] && "$1/bin/python" -c \
        "import sys, pyspark; sys.exit(0 if pyspark.__version__ == '$PYSPARK_VERSION' else 1)" 2>/dev/null
}

spark_jars() {
    local venv=$1 other=${2:-}
    if ! has_pyspark "$venv"; then
        if [ -n "$other" ] && has_pyspark "$other"; then
            venv=$other
        else
            echo "installing pyspark==$PYSPARK_VERSION into $venv (~320 MB download)"
            [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
            "$venv/bin/pip" install --quiet --disable-pip-version-check "pyspark==$PYSPARK_VERSION"
        fi
    fi
    SPARK_VENV=$venv
    JARS="$("$venv/bin/python" -c 'import pyspark,os;print(os.path.join(os.path.dirname(pyspark.__file__),"jars"))')"
    [ -f "$JARS/spark-streaming_2.12-$PYSPARK_VERSION.jar" ] || {
        echo "spark-streaming jar missing in $JARS" >&2
        return 1
    }
}

# From Spark's launcher (JavaModuleOptions) for Java 17.
SPARK_JAVA17_OPTS=(
    -XX:+IgnoreUnrecognizedVMOptions
    --add-opens=java.base/java.lang=ALL-UNNAMED
    --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
    --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
    --add-opens=java.base/sun.security.action=ALL-UNNAMED
    --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
    -Djdk.reflect.useDirectMethodHandle=false
)
