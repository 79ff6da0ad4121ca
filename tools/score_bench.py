#!/usr/bin/env python3
"""Scores `palisade scan --json` output against make_bench_log.py's truth file.

Prints, per attack kind, how many of its attacker IPs palisade named in at least one
detection, and per rule, how many attacker and how many benign IPs it accused. A
benign IP is any IP not in the truth file's attacker list.

usage: score_bench.py TRUTH.json DETECTIONS.jsonl [--json]
exit 0 when every attacker is found and no benign IP is accused by a rule tagged
attack.t1110; exit 1 otherwise.
"""
import ipaddress
import json
import sys
from collections import defaultdict


def norm(ip):
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    as_json = "--json" in sys.argv
    truth = json.load(open(args[0]))
    attackers = {norm(ip): kinds for ip, kinds in truth["attacker_ips"].items()}
    by_rule = defaultdict(lambda: {"attackers": set(), "benign": set(), "tags": []})
    found = set()
    for line in open(args[1]):
        d = json.loads(line)
        ip = d.get("key", {}).get("source.ip")
        if ip is None:
            continue
        ip = norm(ip)
        r = by_rule[d["rule"]["title"]]
        r["tags"] = d["rule"].get("tags", [])
        if ip in attackers:
            r["attackers"].add(ip)
            found.add(ip)
        else:
            r["benign"].add(ip)

    kinds = {}
    for kind, ips in truth["attacker_ips_by_kind"].items():
        ips = [norm(i) for i in ips]
        hit = [i for i in ips if i in found]
        kinds[kind] = {"attackers": len(ips), "found": len(hit),
                       "missed": sorted(set(ips) - set(hit))}
    bf_benign = sorted({ip for r in by_rule.values() if "attack.t1110" in r["tags"]
                        for ip in r["benign"]})
    rules = {t: {"attackers": len(r["attackers"]), "benign": len(r["benign"]),
                 "benign_examples": sorted(r["benign"])[:5], "tags": r["tags"]}
             for t, r in sorted(by_rule.items())}
    ok = all(k["found"] == k["attackers"] for k in kinds.values()) and not bf_benign
    if as_json:
        print(json.dumps({"kinds": kinds, "rules": rules, "t1110_benign": bf_benign,
                          "ok": ok}, indent=1))
    else:
        print("recall by attack kind (attacker IPs named in >= 1 detection):")
        for kind, k in kinds.items():
            miss = (" missed " + ", ".join(k["missed"])) if k["missed"] else ""
            print(f"  {kind:<12} {k['found']}/{k['attackers']}{miss}")
        print("per rule: attacker IPs / benign IPs accused")
        for t, r in rules.items():
            ex = (" e.g. " + ", ".join(r["benign_examples"])) if r["benign"] else ""
            print(f"  {t:<55} {r['attackers']:>4} / {r['benign']:<4}{ex}")
        print(f"benign IPs in detections tagged attack.t1110: {len(bf_benign)}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
