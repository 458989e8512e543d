#!/bin/bash
#
# bench/original.sh -- rendition of the ORIGINAL failover pipeline, for benchmarking only.
#
# Written from the seed blog post ("KISS high-availability with OpenBSD", the
# ksh excerpts in /work/shared/seed/000_1f8a08bf3af04e52.txt) and
# SEED-SYSTEM.md. It is NOT part of kissha, it is NOT meant for production,
# and it deliberately keeps the original's behaviour and flaws so kissha can be
# benchmarked against it side by side:
#   - one health check of the master only (no retries, standby never checked),
#     no timeout on the HTTPS fetch;
#   - node addresses come from live DNS lookups of names the same nsd serves,
#     and are stored unconditionally (an empty lookup publishes an empty address);
#   - the sed program assumes single spaces and TTL 300 (` 300 IN A `), the
#     `^standby` rule also matches `standbyfoo`, the serial rule wants leading
#     spaces before the number and ` ; serial` after it;
#   - a stale .bak is restored blindly; the new file is put in place with mv;
#   - `nsd-control reload` once per changed zone;
#   - "verify" = `dig <zone>` prints some NS line (old data still passes);
#   - the success message prints the undefined $MASTER, as the original does.
# Substitutions (only where the Debian box or a loopback bench demands it):
#   OpenBSD `ftp -4/-6 -o -` -> `curl -4/-6`; `host` -> `dig +short`;
#   `@localhost` -> `@$DIG_SERVER -p $DIG_PORT`; /var/nsd/run -> $RUN_DIR;
#   the week number is forced to base 10 (bash would read "08" as octal).
#   Exit status is the max of the per-zone results (0, 1 or 3).
#
# Environment (defaults in brackets):
#   ZONES_DIR          directory with *.zone files; zone = file name minus ".zone"
#                      [/var/nsd/zones/master]
#   RUN_DIR            where master_a, master_aaaa, standby_a, standby_aaaa go
#                      [a fresh mktemp -d, removed at exit]
#   DEFAULT_MASTER     default master FQDN   [fishfinger.example.org]
#   DEFAULT_STANDBY    default standby FQDN  [blowfish.example.org]
#   ORIG_WEEK          week number override  [$(date +%U)]; even week -> swap
#   ORIG_FAMILIES      IP families to health-check, in order ["4 6"]
#   HTTPS_PORT         port of the health URL [443]
#   CURL_RESOLVE_ARGS  extra curl args for name mapping, word-split
#                      (e.g. "--resolve fishfinger.example.org:8443:127.0.0.2") []
#   CURL_CACERT        if set, passed as --cacert []
#   CURL_EXTRA_ARGS    any other curl args, word-split (no --max-time by default) []
#   DIG_SERVER         nsd to query for node addresses and verify [127.0.0.1]
#   DIG_PORT           its port [53]
#   NSD_CONTROL        command prefix for reload, word-split [nsd-control]
#                      (e.g. "nsd-control -c /tmp/x/nsd.conf")
#
# Exit: 0 nothing changed, 1 at least one zone failed over, 3 a rollback happened.

ZONES_DIR=${ZONES_DIR:-/var/nsd/zones/master}
DEFAULT_MASTER=${DEFAULT_MASTER:-fishfinger.example.org}
DEFAULT_STANDBY=${DEFAULT_STANDBY:-blowfish.example.org}
DIG_SERVER=${DIG_SERVER:-127.0.0.1}
DIG_PORT=${DIG_PORT:-53}
NSD_CONTROL=${NSD_CONTROL:-nsd-control}
HTTPS_PORT=${HTTPS_PORT:-443}
ORIG_FAMILIES=${ORIG_FAMILIES:-4 6}

if [ -z "$RUN_DIR" ]; then
    RUN_DIR=$(mktemp -d) || exit 2
    trap 'rm -rf "$RUN_DIR"' EXIT
fi

determine_master_and_standby () {
    local master=$DEFAULT_MASTER
    local standby=$DEFAULT_STANDBY

    # Weekly auto-failover for Let's Encrypt automation (seed code: even -> swap)
    local week_of_the_year=${ORIG_WEEK:-$(date +%U)}
    week_of_the_year=$((10#$week_of_the_year))
    if [ $(( week_of_the_year % 2 )) -eq 0 ]; then
        local tmp=$master
        master=$standby
        standby=$tmp
    fi

    local url
    if [ "$HTTPS_PORT" = 443 ]; then
        url=https://$master/index.txt
    else
        url=https://$master:$HTTPS_PORT/index.txt
    fi

    # One check per family, first failure wins (the original's if/elif).
    local health_ok=1 family
    for family in $ORIG_FAMILIES; do
        # shellcheck disable=SC2086
        if ! curl -$family -sS $CURL_RESOLVE_ARGS \
                ${CURL_CACERT:+--cacert "$CURL_CACERT"} $CURL_EXTRA_ARGS \
                "$url" | grep -q "Welcome to $master"; then
            echo "$url IPv$family health check failed"
            health_ok=0
            break
        fi
    done

    if [ $health_ok -eq 0 ]; then
        local tmp=$master
        master=$standby
        standby=$tmp
    fi

    echo "Master is $master, standby is $standby"

    # The original: host $name | awk '/has address/ / /has IPv6 address/ {print $NF}'
    dig +short A "$master" @"$DIG_SERVER" -p "$DIG_PORT" \
        | grep -E '^[0-9]+(\.[0-9]+){3}$' > "$RUN_DIR/master_a"
    dig +short AAAA "$master" @"$DIG_SERVER" -p "$DIG_PORT" \
        | grep ':' > "$RUN_DIR/master_aaaa"
    dig +short A "$standby" @"$DIG_SERVER" -p "$DIG_PORT" \
        | grep -E '^[0-9]+(\.[0-9]+){3}$' > "$RUN_DIR/standby_a"
    dig +short AAAA "$standby" @"$DIG_SERVER" -p "$DIG_PORT" \
        | grep ':' > "$RUN_DIR/standby_aaaa"
}

transform () {
    # The seed's sed program, with /var/nsd/run replaced by $RUN_DIR.
    # shellcheck disable=SC2046
    sed -E '
        /IN A .*; Enable failover/ {
            /^standby/! {
                s/^(.*) 300 IN A (.*) ; (.*)/\1 300 IN A '$(cat "$RUN_DIR/master_a")' ; \3/;
            }
            /^standby/ {
                s/^(.*) 300 IN A (.*) ; (.*)/\1 300 IN A '$(cat "$RUN_DIR/standby_a")' ; \3/;
            }
        }
        /IN AAAA .*; Enable failover/ {
            /^standby/! {
                s/^(.*) 300 IN AAAA (.*) ; (.*)/\1 300 IN AAAA '$(cat "$RUN_DIR/master_aaaa")' ; \3/;
            }
            /^standby/ {
                s/^(.*) 300 IN AAAA (.*) ; (.*)/\1 300 IN AAAA '$(cat "$RUN_DIR/standby_aaaa")' ; \3/;
            }
        }
        / ; serial/ {
            s/^( +) ([0-9]+) .*; (.*)/\1 '$(date +%s)' ; \3/;
        }
    '
}

zone_is_ok () {
    local zone=$1
    local domain=${zone%.zone}
    dig "$domain" @"$DIG_SERVER" -p "$DIG_PORT" | grep -q "$domain.*IN.*NS"
}

failover_zone () {
    local zone_file=$1
    local zone
    zone=$(basename "$zone_file")

    # Race condition (a previous run aborted in the middle): restore blindly
    if [ -f "$zone_file.bak" ]; then
        mv "$zone_file.bak" "$zone_file"
    fi

    cat "$zone_file" | transform > "$zone_file.new.tmp"

    grep -v ' ; serial' "$zone_file.new.tmp" > "$zone_file.new.noserial.tmp"
    grep -v ' ; serial' "$zone_file" > "$zone_file.old.noserial.tmp"

    echo "Has zone $zone_file changed?"
    if diff -u "$zone_file.old.noserial.tmp" "$zone_file.new.noserial.tmp"; then
        echo "The zone $zone_file hasn't changed"
        rm "$zone_file".*.tmp
        return 0
    fi

    cp "$zone_file" "$zone_file.bak"
    mv "$zone_file.new.tmp" "$zone_file"
    rm "$zone_file".*.tmp
    echo "Reloading nsd"
    $NSD_CONTROL reload

    if ! zone_is_ok "$zone"; then
        echo "Rolling back $zone_file changes"
        cp "$zone_file" "$zone_file.invalid"
        mv "$zone_file.bak" "$zone_file"
        echo "Reloading nsd"
        $NSD_CONTROL reload
        zone_is_ok "$zone"
        return 3
    fi

    local cleanup
    for cleanup in invalid bak; do
        if [ -f "$zone_file.$cleanup" ]; then
            rm "$zone_file.$cleanup"
        fi
    done

    # $MASTER is undefined, as in the original.
    echo "Failover of zone $zone to $MASTER completed"
    return 1
}

main () {
    determine_master_and_standby

    local ec=0 rc zone_file
    for zone_file in "$ZONES_DIR"/*.zone; do
        failover_zone "$zone_file"
        rc=$?
        if [ $rc -gt $ec ]; then
            ec=$rc
        fi
    done

    # ec other than 0: cron would mail the output.
    exit $ec
}

main
