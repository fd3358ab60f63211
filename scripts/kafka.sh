#!/usr/bin/env bash
# A real Apache Kafka (KRaft, no ZooKeeper) on 127.0.0.1, a single node or a
# cluster of three, provisioned from this repository's own files: the jars
# come from Maven Central through Maven (scripts/kafka/pom.xml), Java runs
# them. Needs java (17 or newer) and, for the first start only, mvn.
# docs/kafka.md says more.
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
# A cluster of three (or more) nodes, each KRaft controller and broker, with
# replication factor 3 and min.insync.replicas 2 (docs/kafka.md):
#
#   scripts/kafka.sh start --nodes 3 start it; the last line lists all of them,
#                                    KAFKA_BROKERS=127.0.0.1:<p1>,<p2>,<p3>
#   scripts/kafka.sh kill-node N     SIGKILL node N (1..3) of the cluster
#   scripts/kafka.sh start-node N    start node N again (or find it running)
#   scripts/kafka.sh node-pid N      the pid of node N (exit 3 when it is down)
#   status, stop and stop --clean    act on all of its nodes (stop: one after
#                                    the other; stop --clean: SIGKILL)
#
#   eval "export $(scripts/kafka.sh start | tail -n 1)"   # sets KAFKA_BROKERS
#
# Environment (all optional):
#   KAFKA_NODES           nodes to start (1; the same as start --nodes N)
#   KAFKA_VERSION         Kafka version to run (3.9.1; 4.1.0 works too)
#   STATELOOP_CACHE       cache of downloads ($HOME/.cache/stateloop); the jars
#                         go to $STATELOOP_CACHE/kafka-<version>/libs
#   KAFKA_DIR             state directory: config, data, log, pid
#                         (/tmp/stateloop-kafka)
#   KAFKA_PORT            client port (default: the previous one if free, else
#                         a free one; single node only)
#   KAFKA_CONTROLLER_PORT KRaft controller port (likewise)
#   KAFKA_NUM_PARTITIONS  partitions of auto-created topics (1)
#   KAFKA_PROPERTIES      extra server properties, key=value separated by
#                         spaces or newlines, e.g. "log.retention.hours=1"
#   KAFKA_HEAP_OPTS       broker heap (-Xmx512m -Xms512m; -Xmx384m -Xms384m
#                         per node of a cluster)
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

# A cluster keeps its node count and cluster id here, node N in node-N/.
CLUSTER_FILE="$KAFKA_DIR/cluster"

# The node the functions below act on: node 0 is the single node, which
# lives in $KAFKA_DIR itself; node N of a cluster lives in $KAFKA_DIR/node-N.
use_node() {
  NODE=$1
  if [ "$NODE" = 0 ]; then NODE_DIR=$KAFKA_DIR; else NODE_DIR=$KAFKA_DIR/node-$NODE; fi
  PID_FILE="$NODE_DIR/kafka.pid"
  LOG_FILE="$NODE_DIR/kafka.log"
  CONF="$NODE_DIR/server.properties"
  PORTS_FILE="$NODE_DIR/ports"
}
use_node 0
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

# The node count of the cluster in $KAFKA_DIR, or nothing (and status 1)
# when it holds a single node or nothing.
cluster_nodes() {
  sed -n 's/^nodes=//p' "$CLUSTER_FILE" 2>/dev/null | grep . || return 1
}

# The client addresses: of the single node, or of every node of the cluster,
# comma-separated.
brokers() {
  local n
  if n=$(cluster_nodes); then
    local i list=
    for i in $(seq 1 "$n"); do
      list="$list${list:+,}$HOST:$(sed -n 's/^port=//p' "$KAFKA_DIR/node-$i/ports" 2>/dev/null)"
    done
    echo "$list"
  else
    sed -n 's/^port=//p' "$KAFKA_DIR/ports" 2>/dev/null | sed "s/^/$HOST:/"
  fi
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
  die "found no free port on $HOST; set KAFKA_PORT and KAFKA_CONTROLLER_PORT (single node), or free some ports."
}

# Pick the ports: the one asked for, else the previous one if still free
# (so that KAFKA_BROKERS stays the same across restarts), else a free one.
# $3 lists the ports already taken by this start, separated by spaces.
pick_port() {
  local asked=$1 previous=$2 taken=" ${3:-} "
  if [ -n "$asked" ]; then
    port_in_use "$asked" && die "port $asked (asked for) is in use on $HOST; choose another one or leave it unset."
    echo "$asked"
  elif [ -n "$previous" ] && [[ $taken != *" $previous "* ]] && ! port_in_use "$previous"; then
    echo "$previous"
  else
    local p
    p=$(free_port)
    while [[ $taken == *" $p "* ]]; do p=$(free_port); done
    echo "$p"
  fi
}

# Writes $CONF for the current node. For a node of a cluster, $VOTERS is the
# controller quorum and $NODES the node count.
write_config() {
  local port=$1 cport=$2
  mkdir -p "$NODE_DIR/data"
  printf 'port=%s\ncontroller_port=%s\n' "$port" "$cport" >"$PORTS_FILE"
  {
    if [ "$NODE" = 0 ]; then
      cat <<EOF
# Written by scripts/kafka.sh on every start; edit KAFKA_PROPERTIES instead.
# A single node that is both KRaft controller and broker (no ZooKeeper).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$cport
EOF
    else
      cat <<EOF
# Written by scripts/kafka.sh on every start; edit KAFKA_PROPERTIES instead.
# Node $NODE of a cluster of $NODES, each both KRaft controller and broker:
# the controller quorum is all of them.
process.roles=broker,controller
node.id=$NODE
controller.quorum.voters=$VOTERS
EOF
    fi
    cat <<EOF
listeners=PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$cport
advertised.listeners=PLAINTEXT://$HOST:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$NODE_DIR/data

num.partitions=${KAFKA_NUM_PARTITIONS:-1}
EOF
    if [ "$NODE" = 0 ]; then
      cat <<EOF
default.replication.factor=1
auto.create.topics.enable=true

# One node: the internal topics of transactions and consumer offsets cannot
# have more replicas than that. With Kafka's defaults (3, and min.isr 2)
# every transaction and every offset commit of stateloop would fail.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
EOF
    else
      local rf=$((NODES < 3 ? NODES : 3))
      local isr=$((rf >= 3 ? 2 : 1))
      cat <<EOF
auto.create.topics.enable=true

# Production defaults: every topic, the consumer offsets and the transaction
# state on $rf nodes; a write succeeds while $isr of them are in sync, so
# one node can be down without stopping anything.
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
EOF
    fi
    cat <<EOF
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

  log4j_config INFO stdout >"$NODE_DIR/log4j.properties"
  log4j2_config INFO stdout >"$NODE_DIR/log4j2.properties"
}

# Formats the current node's data directory once, with cluster id $1 (a new
# one when empty).
format_storage() {
  if [ -f "$NODE_DIR/data/meta.properties" ]; then
    return
  fi
  local id=${1:-}
  if [ -z "$id" ]; then
    id=$(run_class kafka.tools.StorageTool random-uuid) ||
      die "kafka.tools.StorageTool random-uuid failed (see above). The jars in $LIBS may be broken: delete that directory and run this again."
  fi
  say "formatting $NODE_DIR/data (cluster id $id)"
  run_class kafka.tools.StorageTool format -t "$id" -c "$CONF" >/dev/null ||
    die "formatting the storage failed (see above; check KAFKA_PROPERTIES if you set it). Otherwise delete $KAFKA_DIR (scripts/kafka.sh stop --clean) and run this again."
}

# Wait until the broker accepts connections and answers ApiVersions and
# Metadata (BrokerApiVersionsCommand sends both).
wait_ready() {
  local pid=$1 port=$2 t0=$SECONDS last=-1 what="the broker"
  [ "$NODE" = 0 ] || what="node $NODE"
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$what exited during startup; the end of $LOG_FILE:"
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
      say "waiting for $what on $HOST:$port (${waited}s)"
    fi
    if port_in_use "$port" &&
      run_class "$API_VERSIONS_CLASS" --bootstrap-server "$HOST:$port" \
        >"$NODE_DIR/apiversions.txt" 2>&1; then
      return
    fi
    sleep 0.5
  done
}

# Starts the JVM of the current node in the background; sets LAUNCHED_PID.
launch() {
  local heap=$1
  local detach=()
  command -v setsid >/dev/null 2>&1 && detach=(setsid)
  # shellcheck disable=SC2086
  nohup "${detach[@]}" "$JAVA" $heap \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$NODE_DIR/log4j.properties" \
    -Dlog4j2.configurationFile="$NODE_DIR/log4j2.properties" -Dkafka.logs.dir="$NODE_DIR" \
    ${KAFKA_OPTS:-} \
    -cp "$LIBS/*" kafka.Kafka "$CONF" </dev/null >"$LOG_FILE" 2>&1 9>&- &
  LAUNCHED_PID=$!
  echo "$LAUNCHED_PID" >"$PID_FILE"
}

# After wait_ready: setsid forks when it must; then the broker is its child,
# not the pid launch saw. Prints the broker's pid.
settle_pid() {
  local pid=$1
  if ! running_pid >/dev/null && command -v pgrep >/dev/null 2>&1; then
    pid=$(pgrep -n -f "kafka.Kafka $CONF" || echo "$pid")
    echo "$pid" >"$PID_FILE"
  fi
  echo "$pid"
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
  local nodes=${KAFKA_NODES:-1}
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) [ $# -ge 2 ] || die "--nodes needs a number, e.g. start --nodes 3"; nodes=$2; shift 2 ;;
      --nodes=*) nodes=${1#--nodes=}; shift ;;
      *) die "unknown argument to start: $1 (start [--nodes N])" ;;
    esac
  done
  case $nodes in
    '' | *[!0-9]*) die "the node count must be a number from 1 to 9, not '$nodes' (start --nodes 3, or KAFKA_NODES=3)" ;;
  esac
  [ "$nodes" -ge 1 ] && [ "$nodes" -le 9 ] ||
    die "the node count must be from 1 to 9, not $nodes (start --nodes 3, or KAFKA_NODES=3)"
  lock
  local existing
  if existing=$(cluster_nodes); then
    [ "$nodes" = "$existing" ] ||
      die "$KAFKA_DIR holds a cluster of $existing nodes; start it with start --nodes $existing, or delete it first (scripts/kafka.sh stop --clean), or use another KAFKA_DIR."
  elif [ "$nodes" -gt 1 ] && [ -d "$KAFKA_DIR/data" ]; then
    die "$KAFKA_DIR holds a single node; start it without --nodes, or delete it first (scripts/kafka.sh stop --clean), or use another KAFKA_DIR for the cluster."
  fi
  if [ "$nodes" = 1 ]; then
    start_single
  else
    start_cluster "$nodes"
  fi
}

start_single() {
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
  launch "${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m}"
  wait_ready "$LAUNCHED_PID" "$port"
  pid=$(settle_pid "$LAUNCHED_PID")
  say "Kafka $KAFKA_VERSION is ready after $(since "$t0") (pid $pid, data in $KAFKA_DIR/data)"
  echo "KAFKA_BROKERS=$HOST:$port"
}

# The heap of a node of a cluster: smaller than a single node's, three of
# them run on one machine.
cluster_heap() { echo "${KAFKA_HEAP_OPTS:--Xmx384m -Xms384m}"; }

start_cluster() {
  NODES=$1
  [ -z "${KAFKA_PORT:-}${KAFKA_CONTROLLER_PORT:-}" ] ||
    die "KAFKA_PORT and KAFKA_CONTROLLER_PORT are for a single node; a cluster picks free ports for its nodes (unset them)."
  local i t0 down=()
  for i in $(seq 1 "$NODES"); do
    use_node "$i"
    running_pid >/dev/null || down+=("$i")
  done
  if [ ${#down[@]} = 0 ]; then
    say "the Kafka cluster of $NODES nodes is already running (data in $KAFKA_DIR)"
    echo "KAFKA_BROKERS=$(brokers)"
    return
  fi
  t0=$(now_ms)
  find_java
  ensure_jars
  write_tools_log4j

  # Ports: each node's previous ones if still free, else free ones; all
  # written before any node starts, since each needs the whole quorum.
  local taken= ports=() cports=()
  for i in $(seq 1 "$NODES"); do
    use_node "$i"
    local p c
    if running_pid >/dev/null; then
      p=$(sed -n 's/^port=//p' "$PORTS_FILE")
      c=$(sed -n 's/^controller_port=//p' "$PORTS_FILE")
    else
      p=$(pick_port "" "$(sed -n 's/^port=//p' "$PORTS_FILE" 2>/dev/null || true)" "$taken")
      taken="$taken $p"
      c=$(pick_port "" "$(sed -n 's/^controller_port=//p' "$PORTS_FILE" 2>/dev/null || true)" "$taken")
    fi
    taken="$taken $p $c"
    ports[i]=$p
    cports[i]=$c
  done
  VOTERS=
  for i in $(seq 1 "$NODES"); do
    VOTERS="$VOTERS${VOTERS:+,}$i@$HOST:${cports[i]}"
  done

  local id
  id=$(sed -n 's/^cluster.id=//p' "$CLUSTER_FILE" 2>/dev/null || true)
  if [ -z "$id" ]; then
    id=$(run_class kafka.tools.StorageTool random-uuid) ||
      die "kafka.tools.StorageTool random-uuid failed (see above). The jars in $LIBS may be broken: delete that directory and run this again."
    printf 'nodes=%s\ncluster.id=%s\n' "$NODES" "$id" >"$CLUSTER_FILE"
  fi

  local pids=()
  for i in "${down[@]}"; do
    use_node "$i"
    write_config "${ports[i]}" "${cports[i]}"
    format_storage "$id"
  done
  for i in "${down[@]}"; do
    use_node "$i"
    say "starting node $i of $NODES: Kafka $KAFKA_VERSION on $HOST:${ports[i]} (controller $HOST:${cports[i]}; log $LOG_FILE)"
    launch "$(cluster_heap)"
    pids[i]=$LAUNCHED_PID
  done
  for i in "${down[@]}"; do
    use_node "$i"
    wait_ready "${pids[i]}" "${ports[i]}"
    pids[i]=$(settle_pid "${pids[i]}")
  done
  say "the Kafka $KAFKA_VERSION cluster of $NODES nodes is ready after $(since "$t0") (data in $KAFKA_DIR/node-*)"
  echo "KAFKA_BROKERS=$(brokers)"
}

# Checks that N is a node of the cluster in $KAFKA_DIR and selects it.
select_node() {
  local n
  n=$(cluster_nodes) ||
    die "$KAFKA_DIR holds no cluster; start one with scripts/kafka.sh start --nodes 3 (or set KAFKA_DIR to the one you started)."
  case ${1:-} in
    '' | *[!0-9]*) die "which node? give a number from 1 to $n, e.g. kill-node 1" ;;
  esac
  [ "$1" -ge 1 ] && [ "$1" -le "$n" ] || die "the cluster in $KAFKA_DIR has nodes 1 to $n, not $1"
  NODES=$n
  use_node "$1"
}

cmd_kill_node() {
  [ $# = 1 ] || die "kill-node takes one node number, e.g. kill-node 2"
  select_node "$1"
  lock
  local pid
  if ! pid=$(running_pid); then
    say "node $NODE is not running"
    return
  fi
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$PID_FILE"
  say "killed node $NODE (pid $pid, SIGKILL); scripts/kafka.sh start-node $NODE starts it again"
}

cmd_start_node() {
  [ $# = 1 ] || die "start-node takes one node number, e.g. start-node 2"
  select_node "$1"
  lock
  local pid
  if pid=$(running_pid); then
    say "node $NODE is already running (pid $pid)"
    echo "KAFKA_BROKERS=$(brokers)"
    return
  fi
  [ -f "$NODE_DIR/data/meta.properties" ] ||
    die "node $NODE has no data in $NODE_DIR; start the whole cluster with scripts/kafka.sh start --nodes $NODES."
  local t0 port
  t0=$(now_ms)
  find_java
  ensure_jars
  write_tools_log4j
  # Same ports as before: the others know this node by its controller port.
  port=$(sed -n 's/^port=//p' "$PORTS_FILE")
  ! port_in_use "$port" ||
    die "port $port of node $NODE is in use by another process; stop it, or restart the whole cluster (scripts/kafka.sh stop, then start --nodes $NODES)."
  say "starting node $NODE of $NODES on $HOST:$port (log $LOG_FILE)"
  launch "$(cluster_heap)"
  wait_ready "$LAUNCHED_PID" "$port"
  pid=$(settle_pid "$LAUNCHED_PID")
  say "node $NODE is ready after $(since "$t0") (pid $pid)"
  echo "KAFKA_BROKERS=$(brokers)"
}

cmd_node_pid() {
  [ $# = 1 ] || die "node-pid takes one node number, e.g. node-pid 2"
  select_node "$1"
  running_pid || { say "node $NODE is not running"; return 3; }
}

cmd_status() {
  local pid n
  if n=$(cluster_nodes); then
    local i up=0
    for i in $(seq 1 "$n"); do
      use_node "$i"
      if pid=$(running_pid); then
        echo "node $i: running (pid $pid, $HOST:$(sed -n 's/^port=//p' "$PORTS_FILE"), log $LOG_FILE)"
        up=$((up + 1))
      else
        echo "node $i: not running (scripts/kafka.sh start-node $i starts it)"
      fi
    done
    if [ "$up" = 0 ]; then
      echo "the Kafka cluster of $n nodes is not running (data kept in $KAFKA_DIR; scripts/kafka.sh start --nodes $n goes on with it)"
      return 3
    fi
    echo "the Kafka $KAFKA_VERSION cluster has $up of $n nodes running"
    echo "KAFKA_BROKERS=$(brokers)"
  elif pid=$(running_pid); then
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

# Stops the current node: SIGTERM, then SIGKILL after $STOP_TIMEOUT. $1 is
# the pid; the caller has checked it runs.
stop_pid() {
  local pid=$1
  local t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if [ $((SECONDS - t0)) -ge "$STOP_TIMEOUT" ]; then
      if [ -n "${LAST_NODE:-}" ]; then
        say "the last node waits for a controller quorum to confirm its shutdown, and none is left; killing it after ${STOP_TIMEOUT}s (SIGKILL; its logs are checked at the next start)"
      else
        say "still running after ${STOP_TIMEOUT}s; killing it (SIGKILL; the next start waits about 10 s longer for the old broker session to expire)"
      fi
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$PID_FILE"
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
  local pid n t0ms
  t0ms=$(now_ms)
  if n=$(cluster_nodes); then
    local i running=()
    for i in $(seq 1 "$n"); do
      use_node "$i"
      running_pid >/dev/null && running+=("$i")
    done
    if [ ${#running[@]} = 0 ]; then
      say "the Kafka cluster is not running"
    elif $clean; then
      # Its data goes anyway: no need for a clean shutdown.
      say "killing ${#running[@]} of $n nodes (SIGKILL, their data is deleted next)"
      for i in "${running[@]}"; do
        use_node "$i"
        if pid=$(running_pid); then
          kill -KILL "$pid" 2>/dev/null || true
          while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        fi
        rm -f "$PID_FILE"
      done
      say "stopped after $(since "$t0ms")"
    else
      # One after the other, each with a controlled shutdown (its
      # leaderships move to the others first). The last one cannot finish
      # its controlled shutdown: no controller quorum is left to confirm
      # it. It gets a few seconds to flush, then SIGKILL.
      local left=${#running[@]}
      for i in "${running[@]}"; do
        use_node "$i"
        pid=$(running_pid) || { left=$((left - 1)); continue; }
        say "stopping node $i (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        if [ "$left" = 1 ] && [ "$n" -gt 1 ]; then
          STOP_TIMEOUT=$((STOP_TIMEOUT < 10 ? STOP_TIMEOUT : 10)) LAST_NODE=1 stop_pid "$pid"
        else
          stop_pid "$pid"
        fi
        left=$((left - 1))
      done
      say "stopped after $(since "$t0ms")"
    fi
    if $clean; then
      for i in $(seq 1 "$n"); do
        use_node "$i"
        clean_node
        rmdir "$NODE_DIR" 2>/dev/null || true
      done
      rm -f "$CLUSTER_FILE"
      use_node 0
    fi
  else
    if pid=$(running_pid); then
      say "stopping Kafka (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      stop_pid "$pid"
      say "stopped after $(since "$t0ms")"
    else
      say "Kafka is not running"
    fi
    rm -f "$PID_FILE"
    $clean && clean_node
  fi
  if $clean; then
    rm -f "$KAFKA_DIR/.lock"
    rmdir "$KAFKA_DIR" 2>/dev/null || true
    say "deleted the data in $KAFKA_DIR"
  else
    say "data kept in $KAFKA_DIR (scripts/kafka.sh stop --clean deletes it)"
  fi
}

# Deletes what this script made for the current node: only that, in case
# KAFKA_DIR points somewhere shared.
clean_node() {
  rm -rf "$NODE_DIR/data" "$NODE_DIR/server.properties" "$NODE_DIR/log4j.properties" \
    "$NODE_DIR/log4j2.properties" "$NODE_DIR/kafka.log" "$NODE_DIR/ports" \
    "$NODE_DIR/apiversions.txt" "$NODE_DIR/kafka.pid"
}

cmd_run_class() {
  [ $# -ge 1 ] || die "run-class needs a main class, e.g. org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server 127.0.0.1:9092 --list"
  find_java
  ensure_jars
  write_tools_log4j
  run_class "$@"
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  kill-node) shift; cmd_kill_node "$@" ;;
  start-node) shift; cmd_start_node "$@" ;;
  node-pid) shift; cmd_node_pid "$@" ;;
  run-class) shift; cmd_run_class "$@" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
