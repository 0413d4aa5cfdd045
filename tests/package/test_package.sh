#!/usr/bin/env bash
# The Debian package as a user gets it: installs the .deb with apt on this machine, checks where its files
# went, checks the units (systemd-analyze verify, security score), checks the shipped settings file,
# drains a stream from a redis-server of its own into files as the units' user with the units'
# environment, runs lintian, and removes the package again so the machine is left as it was found.
# Usage (as root): tests/package/test_package.sh path/to/redis-eventhubs-connector_<version>_<arch>.deb
# A CI stage (.ci/run), not a CTest test: it installs system-wide, so nothing may run beside it.
set -euo pipefail

deb=$(realpath "$1")
package=redis-eventhubs-connector
user=redis-eventhubs-connector
config_dir=/etc/redis-eventhubs-connector
unit_dir=/lib/systemd/system
state_root=/var/lib/redis-eventhubs-connector
instance="pkgtest-$$"
entries=500

fail() { echo "package test: FAIL: $*" >&2; exit 1; }
step() { echo "package test: $*"; }

[[ $(id -u) -eq 0 ]] || fail "run as root (it installs the package)"
[[ -f "$deb" ]] || fail "$deb does not exist; build it with: cmake --preset package && cmake --build --preset package"
if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
  fail "$package is already installed here; this test installs and removes it, so it refuses to touch that one"
fi

work=$(mktemp -d /tmp/package-test.XXXXXX)
user_existed=$(getent passwd "$user" >/dev/null && echo yes || echo no)
state_existed=$([[ -e "$state_root" ]] && echo yes || echo no)
selections_before=$(dpkg --get-selections | sort)
redis_pid=""
connector_pid=""

cleanup() {
  local status=$?
  set +e
  [[ -n "$connector_pid" ]] && kill -KILL "$connector_pid" 2>/dev/null
  [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  rm -f "$config_dir/$instance.env"
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q installed; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$package" >"$work/purge.log" 2>&1 ||
      { cat "$work/purge.log"; status=1; }
  fi
  # What the package keeps on purge (its user, its state) goes too when this test brought it.
  [[ $user_existed == no ]] && getent passwd "$user" >/dev/null && userdel "$user"
  [[ $state_existed == no ]] && rm -rf "$state_root"
  if [[ "$(dpkg --get-selections | sort)" != "$selections_before" ]]; then
    echo "package test: the installed packages differ from before:" >&2
    diff <(echo "$selections_before") <(dpkg --get-selections | sort) >&2
    status=1
  fi
  rm -rf "$work"
  ((status == 0)) && step "PASS (package removed, machine as before)"
  exit "$status"
}
trap cleanup EXIT

step "lintian $(basename "$deb")"
# Errors fail; the remaining warnings are printed (and listed in the README's Install section).
lintian --fail-on error --tag-display-limit 0 "$deb" | tee "$work/lintian.txt" || fail "lintian reports errors"

step "apt-get install ./$(basename "$deb")"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "apt-get install failed"; }

step "files where the FHS puts them"
for path in /usr/bin/redis-eventhubs-connector /usr/bin/redis-stream-publisher \
  /usr/share/man/man1/redis-eventhubs-connector.1.gz /usr/share/man/man1/redis-stream-publisher.1.gz \
  /usr/share/bash-completion/completions/redis-eventhubs-connector \
  /usr/share/bash-completion/completions/redis-stream-publisher \
  "$unit_dir/$package.service" "$unit_dir/$package@.service" \
  "/usr/share/doc/$package/copyright" "/usr/share/doc/$package/changelog.gz" "$config_dir/connector.env"; do
  [[ -f "$path" ]] || fail "$path is missing"
done
outside=$(dpkg -L "$package" | grep -v -E '^(/\.|/usr|/usr/(bin|share)(/.*)?|/etc|/etc/redis-eventhubs-connector(/.*)?|/lib|/lib/systemd(/.*)?)$' || true)
[[ -z "$outside" ]] || fail "files outside /usr/bin, /usr/share, /etc and /lib/systemd: $outside"
[[ "$(stat -c '%a %U %G' "$config_dir/connector.env")" == "640 root $user" ]] ||
  fail "connector.env is $(stat -c '%a %U %G' "$config_dir/connector.env"), not 640 root $user"
[[ "$(stat -c '%a %U %G' "$config_dir")" == "750 root $user" ]] || fail "$config_dir is $(stat -c '%a %U %G' "$config_dir")"
getent passwd "$user" | grep -q ':/usr/sbin/nologin$' || fail "user $user is missing or has a login shell"
dpkg-query --showformat='${Conffiles}\n' --show "$package" | grep -q "$config_dir/connector.env" ||
  fail "connector.env is not a conffile"
man -l /usr/share/man/man1/redis-eventhubs-connector.1.gz 2>/dev/null | grep -q -- '--redis-url' ||
  zcat /usr/share/man/man1/redis-eventhubs-connector.1.gz | grep -q -- 'redis\\-url' ||
  fail "the man page does not document --redis-url"

step "bash completion offers the flags from --help"
completions=$(bash -c 'source /usr/share/bash-completion/bash_completion
  source /usr/share/bash-completion/completions/redis-stream-publisher
  COMP_WORDS=(redis-stream-publisher --redis-u); COMP_CWORD=1; COMP_LINE="redis-stream-publisher --redis-u"
  COMP_POINT=${#COMP_LINE}; _redis_eventhubs_connector redis-stream-publisher; echo "${COMPREPLY[*]}"')
[[ "$completions" == *--redis-url* ]] || fail "completing 'redis-stream-publisher --redis-u' offers '$completions'"

step "--version"
version=$(dpkg-query -W -f='${Version}' "$package")
[[ "$(redis-eventhubs-connector --version)" == "redis-eventhubs-connector $version"* ]] ||
  fail "--version says '$(redis-eventhubs-connector --version)', the package is $version"

step "systemd-analyze verify and security"
systemd-analyze verify "$unit_dir/$package.service" 2>&1 | tee "$work/verify.txt"
ln -s "$unit_dir/$package@.service" "$work/$package@$instance.service"
systemd-analyze verify "$work/$package@$instance.service" 2>&1 | tee -a "$work/verify.txt"
# verify prints only problems; an unknown binary or setting would appear here.
[[ ! -s "$work/verify.txt" ]] || fail "systemd-analyze verify reports problems"
for unit in "$unit_dir/$package.service" "$work/$package@$instance.service"; do
  score=$(systemd-analyze security --offline=true --no-pager "$unit" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
  step "  $(basename "$unit"): exposure $score"
  [[ "$score" =~ \ (SAFE|OK)$ ]] || fail "systemd-analyze security rates $(basename "$unit") '$score', not OK or better"
done

# Redis for the rest: a server of this test's own, with entries waiting.
# A port found free can be taken by someone else before redis-server binds it (a shared machine): retry.
for _ in 1 2 3 4 5; do
  # Below Linux's ephemeral range (32768 and up): a probe by connecting cannot see a port that an
  # outgoing connection holds, and binding it then fails (seen with the HTTP port on a busy machine).
  port=$(( (RANDOM % 20000) + 10000 ))
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.1
  done
  redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=""
done
[[ -n "$redis_pid" ]] || fail "redis-server did not start: $(cat "$work/redis.log")"
for i in $(seq "$entries"); do echo "XADD telemetry:events * seq $i note \"package test\""; done |
  redis-cli -p "$port" >/dev/null

step "--check-config on the shipped settings file with a REDIS_URL added, as $user"
# An instance's settings file, the way an administrator writes one for the template unit.
install -m 0640 -o root -g "$user" "$config_dir/connector.env" "$config_dir/$instance.env"
echo "REDIS_URL=redis://:hunter2-secret@127.0.0.1:$port" >>"$config_dir/$instance.env"
# A password in the URL (this Redis has none; the next step uses a URL without it) shows that
# --check-config prints *** for it.
runuser -u "$user" -- redis-eventhubs-connector --env-file "$config_dir/$instance.env" --check-config \
  >"$work/check.txt" || fail "--check-config failed: $(cat "$work/check.txt")"
grep -q "^REDIS_URL=redis://:\*\*\*@127.0.0.1:$port/0$" "$work/check.txt" || fail "REDIS_URL not shown with ***: $(head -1 "$work/check.txt")"
grep -q hunter2 "$work/check.txt" && fail "--check-config printed the password"
grep -q '^STREAM_KEY=telemetry:events$' "$work/check.txt" || fail "STREAM_KEY not from the shipped file"
sed -i '$d' "$config_dir/$instance.env"
# The entries are there before the group: it must start at the stream's beginning.
printf 'REDIS_URL=redis://127.0.0.1:%s\nGROUP_START_ID=0\n' "$port" >>"$config_dir/$instance.env"
# Every instance of the template needs an HTTP port of its own (the default 0.0.0.0:9464 is one per host).
http_port=""
if redis-eventhubs-connector --help | grep -q HTTP_ADDRESS; then
  http_port=$((port + 1))
  while (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; do http_port=$((http_port + 1)); done
  echo "HTTP_ADDRESS=127.0.0.1:$http_port" >>"$config_dir/$instance.env"
fi

step "the installed binary drains $entries entries as $user with the template unit's environment"
unit_file="$unit_dir/$package@.service"
# What systemd does for redis-eventhubs-connector@$instance: the state directory, Environment= (with %S,
# %H and %i expanded), then EnvironmentFile= (which wins), then User=/Group= without new privileges.
state_dir="$state_root/$instance"
install -d -m 0755 "$state_root"
install -d -m 0750 -o "$user" -g "$user" "$state_dir"
expand() { sed -e "s|%S|/var/lib|g; s|%H|$(hostname)|g; s|%i|$instance|g"; }
mapfile -t unit_env < <(sed -n 's/^Environment=//p' "$unit_file" | expand)
env_file=$(sed -n 's/^EnvironmentFile=//p' "$unit_file" | expand)
[[ "$env_file" == "$config_dir/$instance.env" ]] || fail "the template unit reads $env_file"
mapfile -t file_env < <(env -i bash -c 'set -a; . "$1"; env -u PWD -u SHLVL -u _' _ "$env_file")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit_file")
setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs -- \
  env -i PATH=/usr/bin:/bin "${unit_env[@]}" "${file_env[@]}" LOG_FORMAT=json $exec_start >"$work/connector.log" 2>&1 &
connector_pid=$!
drained=no
for _ in $(seq 600); do
  # The connector creates the output folder once it runs: until then there is nothing to count.
  files=$({ find "$state_dir/output" -maxdepth 1 -name '*.json' 2>/dev/null || true; } | wc -l)
  pending=$({ redis-cli -p "$port" XPENDING telemetry:events eventhubs-connector 2>/dev/null || true; } | head -n 1)
  if [[ "$files" == "$entries" && "$pending" == "0" ]]; then drained=yes; break; fi
  kill -0 "$connector_pid" 2>/dev/null || break
  sleep 0.1
done
[[ $drained == yes ]] || fail "not drained ($files files, ${pending:-?} pending): $(cat "$work/connector.log")"
grep -q "\"consumer\":\"$(hostname)-$instance\"" "$work/connector.log" ||
  fail "CONSUMER_NAME is not the unit's %H-%i: $(head -3 "$work/connector.log")"
[[ "$(stat -c %U "$state_dir/output/$(ls "$state_dir/output" | head -n 1)")" == "$user" ]] || fail "files not owned by $user"
if [[ -n "$http_port" ]]; then
  # /healthz answers 200 from the sandboxed user's process (HTTP/1.0: the server closes after answering).
  exec 4<>"/dev/tcp/127.0.0.1/$http_port" || fail "nothing listens on HTTP_ADDRESS 127.0.0.1:$http_port"
  printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&4
  reply=$(head -n 1 <&4 | tr -d '\r')
  exec 4<&-
  [[ "$reply" == "HTTP/1.1 200"* || "$reply" == "HTTP/1.0 200"* ]] || fail "GET /healthz answered '$reply'"
  step "GET /healthz on 127.0.0.1:$http_port: $reply"
fi
kill -TERM "$connector_pid"
status=0
wait "$connector_pid" || status=$?
connector_pid=""
((status == 0)) || fail "the connector exited $status on SIGTERM: $(tail -5 "$work/connector.log")"
step "drained $entries entries into $state_dir/output; SIGTERM -> exit 0"
