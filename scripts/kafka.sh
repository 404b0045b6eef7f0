#!/usr/bin/env bash
# Apache Kafka, the project's broker of record: installed from Maven Central
# and run as a single-node KRaft broker on loopback. scripts/broker.sh runs
# the shared broker with it; test-support's PrivateBroker runs one per test.
#
#   scripts/kafka.sh install                      the jars and the broker-side helpers, once per version
#   scripts/kafka.sh serve DIR --port P [options] a fresh broker in DIR, in the foreground (exec java)
#   scripts/kafka.sh admin BOOTSTRAP COMMAND ...  BrokerAdmin: topics, ACLs, quotas, SCRAM users
#   scripts/kafka.sh version                      the version KAFKA_VERSION selects
#
# serve's options:
#   --port P              the PLAINTEXT listener
#   --controller-port C   the KRaft controller (default P+1)
#   --internal-port I     a PLAINTEXT listener that always advertises itself, for
#                         the broker's own traffic and for admin calls (default P+7)
#   --advertise H:P2      what the PLAINTEXT listener advertises (a proxy or delay line in front)
#   --all-listeners       also SASL_SSL/SCRAM on P+2, SASL_SSL/PLAIN on P+3, SSL with client
#                         certificates on P+4, SASL_SSL/OAUTHBEARER checked like MSK IAM on P+5,
#                         and the same with tokens that expire after IAM_SHORT_TOKEN_SECONDS on P+6;
#                         SCRAM and IAM sessions end after SCRAM_REAUTH_MS and IAM_REAUTH_MS
#
# serve writes DIR/listeners.json: every address, the CA, the client
# certificate, the users and the IAM test credentials, for the tests.
#
# KAFKA_VERSION picks the version (default: the newest MSK offers);
# KAFKA_HEAP the JVM's heap bound; KAFKA_TOOLS the install folder.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${KAFKA_VERSION:-4.1.2}
TOOLS=${KAFKA_TOOLS:-$PWD/.tools}
HOME_DIR=$TOOLS/kafka-$VERSION
HEAP=${KAFKA_HEAP:-512m}
# Test-only identities of the broker's SASL and TLS listeners.
SCRAM_USERS=(writer denied throttled)
IAM_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
IAM_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
IAM_REGION=us-east-1
IAM_REAUTH_MS=${IAM_REAUTH_MS:-30000}
IAM_SHORT_TOKEN_SECONDS=${IAM_SHORT_TOKEN_SECONDS:-3}
# SCRAM sessions end too, so a rotated password shows on the next one.
SCRAM_REAUTH_MS=${SCRAM_REAUTH_MS:-4000}

# The jars go to one folder per version and pom, the compiled helpers to
# one per source hash: nothing a running broker loads from is ever
# replaced. Parallel tests may all ask at once, so the install holds a lock.
# Maven's repository follows $HOME (the JVM's own user.home does not).
sources_hash() { cat "$@" | sha256sum | cut -c1-16; }
CLASSES=$HOME_DIR/classes-$(sources_hash scripts/kafka/pom.xml scripts/kafka/*.java)
LIBS_STAMP="$VERSION $(sources_hash scripts/kafka/pom.xml)"
MAVEN_REPO=${KAFKA_MAVEN_REPO:-$HOME/.m2/repository}

installed() { [ -f "$HOME_DIR/.installed" ] && [ "$(cat "$HOME_DIR/.installed")" = "$LIBS_STAMP" ] && [ -d "$CLASSES" ]; }

install() {
  installed && return
  command -v java >/dev/null && command -v mvn >/dev/null || {
    echo "Apache Kafka needs a JDK 17 and Maven (apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 1
  }
  mkdir -p "$HOME_DIR"
  exec 9>"$HOME_DIR/.lock"
  flock 9
  if ! [ -f "$HOME_DIR/.installed" ] || [ "$(cat "$HOME_DIR/.installed")" != "$LIBS_STAMP" ]; then
    echo "installing Apache Kafka $VERSION (once: Maven fetches about 45 MB)"
    local libs=$HOME_DIR/libs.new
    rm -rf "$libs"
    mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$MAVEN_REPO" -f scripts/kafka/pom.xml \
      -Dkafka.version="$VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" \
      >"$HOME_DIR/maven.log" 2>&1 || { cat "$HOME_DIR/maven.log" >&2; exit 1; }
    rm -rf "$HOME_DIR/libs"
    mv -T "$libs" "$HOME_DIR/libs"
    echo "$LIBS_STAMP" > "$HOME_DIR/.installed"
  fi
  if [ ! -d "$CLASSES" ]; then
    rm -rf "$CLASSES.new"
    javac -nowarn -cp "$HOME_DIR/libs/*" -d "$CLASSES.new" scripts/kafka/*.java
    mv -T "$CLASSES.new" "$CLASSES"
  fi
  flock -u 9
}

classpath() { echo "$HOME_DIR/libs/*:$CLASSES"; }

java_opts() {
  # Two cores are shared with the build: a bounded heap, the serial
  # collector, and no JIT threads beyond what a test broker needs.
  echo "-Xms128m -Xmx$HEAP -XX:+UseSerialGC -XX:CICompilerCount=2 -Djava.awt.headless=true ${KAFKA_JVM_OPTS:-}"
}

# A CA, a broker certificate for localhost and a client certificate, made
# anew at every start (they live 30 days; making them takes a second). rustls needs a SAN on the leaf and a leaf that is
# not a CA. The broker's names only localhost, so a client that checks the
# hostname refuses it at 127.0.0.1.
make_tls() {
  local tls=$1
  rm -rf "$tls"
  mkdir -p "$tls"
  (
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
      -subj "/CN=lambda-stream-kit test CA" -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    for leaf in broker client; do
      local cn=localhost ext="subjectAltName=DNS:localhost"
      [ "$leaf" = client ] && cn=writer ext="subjectAltName=DNS:writer"
      openssl req -newkey rsa:2048 -nodes -keyout "$leaf.key" -out "$leaf.csr" -subj "/CN=$cn" 2>/dev/null
      printf '%s\nbasicConstraints=CA:FALSE\n' "$ext" > "$leaf.ext"
      openssl x509 -req -in "$leaf.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile "$leaf.ext" -out "$leaf.pem" 2>/dev/null
    done
    # The client's chain as Lambda's secret holds it: leaf, then the CA.
    cat client.pem ca.pem > client-chain.pem
    openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem \
      -name broker -passout pass:broker-store -out broker.p12
  )
}

serve() {
  local dir=$1; shift
  local port="" controller="" internal="" advertise="" all=false
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port=$2; shift 2 ;;
      --controller-port) controller=$2; shift 2 ;;
      --internal-port) internal=$2; shift 2 ;;
      --advertise) advertise=$2; shift 2 ;;
      --all-listeners) all=true; shift ;;
      *) echo "serve: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [ -n "$port" ] || { echo "serve: --port is required" >&2; exit 2; }
  controller=${controller:-$((port + 1))}
  internal=${internal:-$((port + 7))}
  advertise=${advertise:-127.0.0.1:$port}
  install
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  # A fresh log every start, as the tests expect of a new broker.
  rm -rf "$dir/data" "$dir/iam.log" "$dir/iam-short.log"
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller,INTERNAL://127.0.0.1:$internal"
  local advertised="PLAINTEXT://$advertise,INTERNAL://127.0.0.1:$internal"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT"
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# One node is both controller and broker: a process paused longer than the
# broker session (the demo stops it for 35 s) must come back as it was, not
# fenced with no leader for any partition.
broker.session.timeout.ms=120000
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=2
log.flush.interval.messages=9223372036854775807
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
super.users=User:ANONYMOUS
EOF
  local scram_args=()
  if $all; then
    make_tls "$dir/tls"
    listeners+=",SCRAM://127.0.0.1:$((port + 2)),PLAIN://127.0.0.1:$((port + 3)),MTLS://127.0.0.1:$((port + 4))"
    listeners+=",IAM://127.0.0.1:$((port + 5)),IAMSHORT://127.0.0.1:$((port + 6))"
    advertised+=",SCRAM://localhost:$((port + 2)),PLAIN://localhost:$((port + 3)),MTLS://localhost:$((port + 4))"
    advertised+=",IAM://localhost:$((port + 5)),IAMSHORT://localhost:$((port + 6))"
    protocols+=",SCRAM:SASL_SSL,PLAIN:SASL_SSL,MTLS:SSL,IAM:SASL_SSL,IAMSHORT:SASL_SSL"
    # The login module logs the broker itself in (unsecured, never used on
  # the wire); the validator reads the credentials it checks tokens with.
  local iam_login="org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"broker\" accessKeyId=\"$IAM_ACCESS_KEY_ID\" secretAccessKey=\"$IAM_SECRET_ACCESS_KEY\" region=\"$IAM_REGION\""
    local plain_users="" user
    for user in "${SCRAM_USERS[@]}"; do
      plain_users+=" user_$user=\"$user-secret\""
      scram_args+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$user-secret]"
        --add-scram "SCRAM-SHA-256=[name=$user,password=$user-secret]")
    done
    cat >> "$dir/server.properties" <<EOF
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=broker-store
ssl.key.password=broker-store
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
listener.name.scram.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.scram.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.scram.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.scram.scram-sha-512.connections.max.reauth.ms=$SCRAM_REAUTH_MS
listener.name.scram.scram-sha-256.connections.max.reauth.ms=$SCRAM_REAUTH_MS
listener.name.plain.sasl.enabled.mechanisms=PLAIN
listener.name.plain.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain_users;
listener.name.mtls.ssl.client.auth=required
listener.name.iam.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.iam.oauthbearer.sasl.server.callback.handler.class=MskIamValidator
listener.name.iam.oauthbearer.sasl.jaas.config=$iam_login logFile="$dir/iam.log";
listener.name.iam.oauthbearer.connections.max.reauth.ms=$IAM_REAUTH_MS
listener.name.iamshort.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.iamshort.oauthbearer.sasl.server.callback.handler.class=MskIamValidator
listener.name.iamshort.oauthbearer.sasl.jaas.config=$iam_login maxTokenAgeSeconds="$IAM_SHORT_TOKEN_SECONDS" logFile="$dir/iam-short.log";
listener.name.iamshort.oauthbearer.connections.max.reauth.ms=$((IAM_SHORT_TOKEN_SECONDS * 1000))
EOF
  fi
  cat >> "$dir/server.properties" <<EOF
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
EOF
  write_listeners "$dir" "$port" "$internal" "$advertise" "$all"
  local cluster
  cluster=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  # shellcheck disable=SC2046
  java $(java_opts) -cp "$(classpath)" kafka.tools.StorageTool format --cluster-id="$cluster" \
    -c "$dir/server.properties" "${scram_args[@]}" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; exit 1; }
  # shellcheck disable=SC2046
  exec java $(java_opts) -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
    -Dorg.slf4j.simpleLogger.log.org.apache.kafka=warn \
    -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info \
    -cp "$(classpath)" kafka.Kafka "$dir/server.properties"
}

write_listeners() {
  local dir=$1 port=$2 internal=$3 advertise=$4 all=$5
  python3 - "$dir" "$port" "$internal" "$advertise" "$all" "$VERSION" <<PY
import json, sys
dir, port, internal, advertise, version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[6]
all_listeners = sys.argv[5] == "true"
out = {"version": version, "plaintext": f"127.0.0.1:{port}", "internal": f"127.0.0.1:{internal}",
       "advertised": advertise}
if all_listeners:
    out.update({
        "scram": f"localhost:{port + 2}",
        "plain": f"localhost:{port + 3}",
        "mtls": f"localhost:{port + 4}",
        "iam": f"localhost:{port + 5}",
        "iam_short": f"localhost:{port + 6}",
        "ca_file": f"{dir}/tls/ca.pem",
        "client_certificate_chain": f"{dir}/tls/client-chain.pem",
        "client_key": f"{dir}/tls/client.key",
        "mtls_principal": "writer",
        "users": {u: f"{u}-secret" for u in "${SCRAM_USERS[*]}".split()},
        "iam_credentials": {"access_key_id": "$IAM_ACCESS_KEY_ID",
                            "secret_access_key": "$IAM_SECRET_ACCESS_KEY", "region": "$IAM_REGION"},
        "iam_log": f"{dir}/iam.log",
        "iam_short_log": f"{dir}/iam-short.log",
        "iam_reauth_ms": $IAM_REAUTH_MS,
        "iam_short_token_seconds": $IAM_SHORT_TOKEN_SECONDS,
        "scram_reauth_ms": $SCRAM_REAUTH_MS,
    })
with open(f"{dir}/listeners.json", "w") as f:
    json.dump(out, f, indent=1)
PY
}

case "${1:-}" in
  install) install ;;
  serve) shift; [ $# -ge 1 ] || { echo "usage: $0 serve DIR --port P [options]" >&2; exit 2; }; serve "$@" ;;
  admin)
    shift
    install
    # shellcheck disable=SC2046
    exec java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$(classpath)" BrokerAdmin "$@"
    ;;
  classpath) classpath ;;
  version) echo "$VERSION" ;;
  *) echo "usage: $0 install | serve DIR --port P [--controller-port C] [--advertise H:P] [--all-listeners] | admin BOOTSTRAP COMMAND ..." >&2; exit 2 ;;
esac
