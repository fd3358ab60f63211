#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, no ZooKeeper) on 127.0.0.1,
# provisioned from this repository's own files: the jars come from Maven
# Central through Maven (scripts/kafka/pom.xml), Java runs them. Needs java
# (17 or newer) and, for the first start only, mvn. docs/kafka.md says more.
#
#   scripts/kafka.sh start           start it (or find it running); the last
#                                    line is KAFKA_BROKERS=127.0.0.1:<port>
#   scripts/kafka.sh status          running or not, and the address
#   scripts/kafka.sh stop            stop it, keep its data (the next start
#                                    goes on with the same topics)
#   scripts/kafka.sh stop --clean    stop it and delete its data
#   scripts/kafka.sh run-class CLASS [ARGS...]
#                                    run a Kafka tool from the same jars, e.g.
#                                    org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
#
#   eval "export $(scripts/kafka.sh start | tail -n 1)"   # sets KAFKA_BROKERS
#
# Environment (all optional):
#   KAFKA_VERSION         Kafka version to run (3.9.1; 4.1.0 works too)
#   STATELOOP_CACHE       cache of downloads ($HOME/.cache/stateloop); the jars
#                         go to $STATELOOP_CACHE/kafka-<version>/libs
#   KAFKA_DIR             state directory: config, data, log, pid
#                         (/tmp/stateloop-kafka)
#   KAFKA_PORT            client port (default: the previous one if free, else
#                         a free one)
#   KAFKA_CONTROLLER_PORT KRaft controller port (likewise)
#   KAFKA_NUM_PARTITIONS  partitions of auto-created topics (1)
#   KAFKA_PROPERTIES      extra server properties, key=value separated by
#                         spaces or newlines, e.g. "log.retention.hours=1"
#   KAFKA_HEAP_OPTS       broker heap (-Xmx512m -Xms512m)
#   KAFKA_OPTS            more JVM options for the broker
#   KAFKA_START_TIMEOUT   seconds to wait for the broker (120)
#   KAFKA_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL (60)
#   KAFKA_MVN_ARGS        more arguments for mvn (e.g. -s my-settings.xml)
#   JAVA_HOME             the JDK to use (else java on PATH)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/kafka/pom.xml"

KAFKA_VERSION=${KAFKA_VERSION:-3.9.1}
CACHE=${STATELOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stateloop}
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
KAFKA_DIR=${KAFKA_DIR:-/tmp/stateloop-kafka}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-60}
HOST=127.0.0.1

PID_FILE="$KAFKA_DIR/kafka.pid"
LOG_FILE="$KAFKA_DIR/kafka.log"
CONF="$KAFKA_DIR/server.properties"
PORTS_FILE="$KAFKA_DIR/ports"
# Logging of the tools: Kafka 3.x logs with log4j 1 (reload4j), 4.x also
# with log4j 2; each gets a file.
TOOLS_LOG4J="$CACHE/kafka-$KAFKA_VERSION/tools-log4j.properties"
TOOLS_LOG4J2="$CACHE/kafka-$KAFKA_VERSION/tools-log4j2.properties"
KAFKA_MAJOR=${KAFKA_VERSION%%.*}
if [ "$KAFKA_MAJOR" -ge 4 ] 2>/dev/null; then
  API_VERSIONS_CLASS=org.apache.kafka.tools.BrokerApiVersionsCommand
  JAVA_MIN=17
else
  API_VERSIONS_CLASS=kafka.admin.BrokerApiVersionsCommand
  JAVA_MIN=11
fi

# Milliseconds since the epoch, and the seconds since such a time.
now_ms() { date +%s%3N; }
since() { local d=$(($(now_ms) - $1)); printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100)); }

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# ---------------------------------------------------------------- java, mvn

JAVA=
find_java() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA=$(command -v java)
  else
    die "no java found. Install a JDK or JRE 17 or newer (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME, then run this again."
  fi
  local v major
  v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
  major=${v%%.*}
  [ "$major" = 1 ] && major=$(echo "$v" | cut -d. -f2)
  if [ -z "$major" ] || ! [ "$major" -ge "$JAVA_MIN" ] 2>/dev/null; then
    die "$JAVA is Java '${v:-unknown}'; Kafka $KAFKA_VERSION needs Java $JAVA_MIN or newer (17 recommended). Install a newer JDK or set JAVA_HOME to one."
  fi
}

# The jars of Kafka $KAFKA_VERSION, downloaded once into $LIBS.
ensure_jars() {
  if [ -f "$LIBS/.complete" ]; then
    return
  fi
  command -v mvn >/dev/null 2>&1 ||
    die "Kafka $KAFKA_VERSION is not in the cache ($LIBS) and mvn is not installed to fetch it. Install Maven (Debian/Ubuntu: apt-get install maven), or copy the jars of a previous download there, then run this again."
  [ -f "$POM" ] || die "$POM is missing; run this script from a full checkout of the repository."

  mkdir -p "$CACHE/kafka-$KAFKA_VERSION"
  local tmp mvnlog rc
  tmp=$(mktemp -d "$CACHE/kafka-$KAFKA_VERSION/libs.tmp.XXXXXX")
  mvnlog="$CACHE/kafka-$KAFKA_VERSION/mvn.log"
  say "downloading Apache Kafka $KAFKA_VERSION from Maven Central with Maven (once; cached in $LIBS)"
  local t0
  t0=$(now_ms)
  set +e
  # shellcheck disable=SC2086
  mvn -B -U -Dstyle.color=never -f "$POM" ${KAFKA_MVN_ARGS:-} \
    -Dkafka.version="$KAFKA_VERSION" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
    tee "$mvnlog" |
    while IFS= read -r line; do
      case $line in
        *"Downloaded from"*.jar" ("*)
          url=${line%% (*}
          size=${line##* (}
          printf '  %s (%s)\n' "${url##*/}" "${size%% at *}" >&2 ;;
      esac
    done
  rc=${PIPESTATUS[0]}
  set -e
  local n
  n=$(find "$tmp" -name '*.jar' | wc -l)
  if [ "$rc" != 0 ] || ! [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    rm -rf "$tmp"
    grep -E '^\[ERROR\] [^ []' "$mvnlog" | grep -v -e '^\[ERROR\] To see' -e '^\[ERROR\] Re-run' -e '^\[ERROR\] For more' | head -n 5 >&2 || true
    die "downloading Kafka $KAFKA_VERSION with Maven failed (mvn exit $rc; full log: $mvnlog). Check that Maven Central is reachable (a proxy or mirror goes in ~/.m2/settings.xml, or pass KAFKA_MVN_ARGS='-s settings.xml') and that Kafka $KAFKA_VERSION exists, then run this again."
  fi
  touch "$tmp/.complete"
  # A leftover without the marker is not a download to keep.
  [ -f "$LIBS/.complete" ] || rm -rf "$LIBS"
  # Another start may have finished the same download meanwhile.
  if ! mv -T "$tmp" "$LIBS" 2>/dev/null; then
    rm -rf "$tmp"
    [ -f "$LIBS/.complete" ] || die "could not move the downloaded jars to $LIBS; remove that directory and run this again."
  fi
  say "downloaded $n jars ($(du -sh "$LIBS" | cut -f1)) in $(since "$t0")"
}

# Run a Kafka command-line tool from the jars, logging warnings to stderr.
run_class() {
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$TOOLS_LOG4J" -Dlog4j2.configurationFile="$TOOLS_LOG4J2" \
    -cp "$LIBS/*" "$@" 9>&-
}

# log4j 1 and log4j 2 configurations: level $1, to $2 (stdout or stderr).
log4j_config() {
  cat <<EOF
log4j.rootLogger=$1, console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.Target=System.${2#std}
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
}
log4j2_config() {
  cat <<EOF
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_$(echo "${2#std}" | tr "[:lower:]" "[:upper:]")
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $1
rootLogger.appenderRef.console.ref = console
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

write_tools_log4j() {
  log4j_config WARN stderr >"$TOOLS_LOG4J.$$" && mv -f "$TOOLS_LOG4J.$$" "$TOOLS_LOG4J"
  log4j2_config WARN stderr >"$TOOLS_LOG4J2.$$" && mv -f "$TOOLS_LOG4J2.$$" "$TOOLS_LOG4J2"
}

# ---------------------------------------------------------------- process

# The pid of our broker if it runs, else nothing (and status 1).
running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # Not some other process that got the same pid later.
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "kafka.Kafka $CONF" || return 1
  fi
  echo "$pid"
}

brokers() {
  sed -n 's/^port=//p' "$PORTS_FILE" 2>/dev/null | sed "s/^/$HOST:/"
}

port_in_use() {
  # A connect that succeeds means something listens there.
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

free_port() {
  local p
  if command -v python3 >/dev/null 2>&1 &&
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null); then
    echo "$p"
    return
  fi
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! port_in_use "$p"; then
      echo "$p"
      return
    fi
  done
  die "found no free port on $HOST; set KAFKA_PORT and KAFKA_CONTROLLER_PORT."
}

# Pick the ports: the one asked for, else the previous one if still free
# (so that KAFKA_BROKERS stays the same across restarts), else a free one.
pick_port() {
  local asked=$1 previous=$2 other=${3:-}
  if [ -n "$asked" ]; then
    port_in_use "$asked" && die "port $asked (asked for) is in use on $HOST; choose another one or leave it unset."
    echo "$asked"
  elif [ -n "$previous" ] && [ "$previous" != "$other" ] && ! port_in_use "$previous"; then
    echo "$previous"
  else
    local p
    p=$(free_port)
    while [ "$p" = "$other" ]; do p=$(free_port); done
    echo "$p"
  fi
}

write_config() {
  local port=$1 cport=$2
  mkdir -p "$KAFKA_DIR/data"
  printf 'port=%s\ncontroller_port=%s\n' "$port" "$cport" >"$PORTS_FILE"
  {
    cat <<EOF
# Written by scripts/kafka.sh on every start; edit KAFKA_PROPERTIES instead.
# A single node that is both KRaft controller and broker (no ZooKeeper).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$cport
listeners=PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$cport
advertised.listeners=PLAINTEXT://$HOST:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$KAFKA_DIR/data

num.partitions=${KAFKA_NUM_PARTITIONS:-1}
default.replication.factor=1
auto.create.topics.enable=true

# One node: the internal topics of transactions and consumer offsets cannot
# have more replicas than that. With Kafka's defaults (3, and min.isr 2)
# every transaction and every offset commit of stateloop would fail.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
# Fewer partitions for the internal topics than the default 50: created
# faster on the first transaction or group, fewer files. Same semantics.
offsets.topic.num.partitions=8
transaction.state.log.num.partitions=8

# A group's first rebalance starts at once instead of after 3 s.
group.initial.rebalance.delay.ms=0
EOF
    if [ -n "${KAFKA_PROPERTIES:-}" ]; then
      echo
      echo "# KAFKA_PROPERTIES (later lines win)"
      for kv in $KAFKA_PROPERTIES; do echo "$kv"; done
    fi
  } >"$CONF"

  log4j_config INFO stdout >"$KAFKA_DIR/log4j.properties"
  log4j2_config INFO stdout >"$KAFKA_DIR/log4j2.properties"
}

format_storage() {
  if [ -f "$KAFKA_DIR/data/meta.properties" ]; then
    return
  fi
  local id
  id=$(run_class kafka.tools.StorageTool random-uuid) ||
    die "kafka.tools.StorageTool random-uuid failed (see above). The jars in $LIBS may be broken: delete that directory and run this again."
  say "formatting $KAFKA_DIR/data (cluster id $id)"
  run_class kafka.tools.StorageTool format -t "$id" -c "$CONF" >/dev/null ||
    die "formatting the storage failed (see above; check KAFKA_PROPERTIES if you set it). Otherwise delete $KAFKA_DIR (scripts/kafka.sh stop --clean) and run this again."
}

# Wait until the broker accepts connections and answers ApiVersions and
# Metadata (BrokerApiVersionsCommand sends both).
wait_ready() {
  local pid=$1 port=$2 t0=$SECONDS last=-1
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "the broker exited during startup; the end of $LOG_FILE:"
      tail -n 30 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      die "Kafka did not start (see the log above; a port in use, a bad KAFKA_PROPERTIES or a broken data directory are the usual causes: try KAFKA_PORT=..., or scripts/kafka.sh stop --clean to start over)."
    fi
    local waited=$((SECONDS - t0))
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "Kafka did not answer on $HOST:$port within ${START_TIMEOUT}s (log: $LOG_FILE). It is still running as pid $pid: stop it with scripts/kafka.sh stop, or wait longer with KAFKA_START_TIMEOUT."
    fi
    if [ $((waited / 5)) != "$last" ]; then
      last=$((waited / 5))
      say "waiting for the broker on $HOST:$port (${waited}s)"
    fi
    if port_in_use "$port" &&
      run_class "$API_VERSIONS_CLASS" --bootstrap-server "$HOST:$port" \
        >"$KAFKA_DIR/apiversions.txt" 2>&1; then
      return
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- commands

lock() {
  mkdir -p "$KAFKA_DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$KAFKA_DIR/.lock"
    flock -w 600 9 || die "another scripts/kafka.sh holds $KAFKA_DIR/.lock."
  fi
}

cmd_start() {
  lock
  local pid
  if pid=$(running_pid); then
    say "Kafka is already running (pid $pid, data in $KAFKA_DIR)"
    echo "KAFKA_BROKERS=$(brokers)"
    return
  fi
  local t0
  t0=$(now_ms)
  find_java
  ensure_jars
  write_tools_log4j

  local prev_port prev_cport port cport
  prev_port=$(sed -n 's/^port=//p' "$PORTS_FILE" 2>/dev/null || true)
  prev_cport=$(sed -n 's/^controller_port=//p' "$PORTS_FILE" 2>/dev/null || true)
  port=$(pick_port "${KAFKA_PORT:-}" "$prev_port")
  cport=$(pick_port "${KAFKA_CONTROLLER_PORT:-}" "$prev_cport" "$port")
  write_config "$port" "$cport"
  format_storage

  say "starting Kafka $KAFKA_VERSION on $HOST:$port (controller $HOST:$cport; log $LOG_FILE)"
  local detach=()
  command -v setsid >/dev/null 2>&1 && detach=(setsid)
  # shellcheck disable=SC2086
  nohup "${detach[@]}" "$JAVA" ${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m} \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DIR" \
    ${KAFKA_OPTS:-} \
    -cp "$LIBS/*" kafka.Kafka "$CONF" </dev/null >"$LOG_FILE" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  wait_ready "$pid" "$port"
  # setsid forks when it must; then the broker is its child, not $pid.
  if ! running_pid >/dev/null && command -v pgrep >/dev/null 2>&1; then
    pid=$(pgrep -n -f "kafka.Kafka $CONF" || echo "$pid")
    echo "$pid" >"$PID_FILE"
  fi
  say "Kafka $KAFKA_VERSION is ready after $(since "$t0") (pid $pid, data in $KAFKA_DIR/data)"
  echo "KAFKA_BROKERS=$HOST:$port"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    echo "Kafka $KAFKA_VERSION is running (pid $pid, data in $KAFKA_DIR, log $LOG_FILE)"
    echo "KAFKA_BROKERS=$(brokers)"
  else
    if [ -d "$KAFKA_DIR/data" ]; then
      echo "Kafka is not running (data kept in $KAFKA_DIR; scripts/kafka.sh start goes on with it)"
    else
      echo "Kafka is not running"
    fi
    return 3
  fi
}

cmd_stop() {
  local clean=false
  for a in "$@"; do
    case $a in
      --clean) clean=true ;;
      *) die "unknown argument to stop: $a (stop [--clean])" ;;
    esac
  done
  [ -d "$KAFKA_DIR" ] || { say "Kafka is not running (no $KAFKA_DIR)"; return; }
  lock
  local pid
  if pid=$(running_pid); then
    say "stopping Kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local t0=$SECONDS t0ms
    t0ms=$(now_ms)
    while kill -0 "$pid" 2>/dev/null; do
      if [ $((SECONDS - t0)) -ge "$STOP_TIMEOUT" ]; then
        say "still running after ${STOP_TIMEOUT}s; killing it (SIGKILL; the next start waits about 10 s longer for the old broker session to expire)"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    say "stopped after $(since "$t0ms")"
  else
    say "Kafka is not running"
  fi
  rm -f "$PID_FILE"
  if $clean; then
    # Only what this script made, in case KAFKA_DIR points somewhere shared.
    rm -rf "$KAFKA_DIR/data" "$KAFKA_DIR/server.properties" "$KAFKA_DIR/log4j.properties" \
      "$KAFKA_DIR/log4j2.properties" "$KAFKA_DIR/kafka.log" "$KAFKA_DIR/ports" \
      "$KAFKA_DIR/apiversions.txt" "$KAFKA_DIR/.lock"
    rmdir "$KAFKA_DIR" 2>/dev/null || true
    say "deleted the data in $KAFKA_DIR"
  else
    say "data kept in $KAFKA_DIR (scripts/kafka.sh stop --clean deletes it)"
  fi
}

cmd_run_class() {
  [ $# -ge 1 ] || die "run-class needs a main class, e.g. org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server 127.0.0.1:9092 --list"
  find_java
  ensure_jars
  write_tools_log4j
  run_class "$@"
}

case ${1:-} in
  start) shift; [ $# = 0 ] || die "start takes no arguments"; cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  run-class) shift; cmd_run_class "$@" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
