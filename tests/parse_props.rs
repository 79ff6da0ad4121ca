//! Property tests for the nginx access parser: it never panics on arbitrary input, and
//! generated `combined` lines come back field for field.

use std::sync::Arc;

use palisade::config::NetworkConfig;
use palisade::parse::Parser;
use palisade::parse::nginx::{LogFormat, NginxParser};
use palisade::parse::time::LocalClock;
use palisade::sources::Line;
use proptest::prelude::*;

fn parser(format: &str) -> NginxParser {
    let format = LogFormat::compile(format).unwrap();
    NginxParser::new(format, &NetworkConfig::default(), LocalClock::default())
}

fn line(text: String) -> Line {
    Line {
        source: Arc::from("prop"),
        path: Arc::from("prop"),
        offset: 0,
        text,
        truncated: false,
        invalid_utf8: false,
    }
}

/// Text nginx could write inside a quoted field: no `"`, no control bytes.
fn field_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 /._;:()=&%+,~-]{0,40}"
}

proptest! {
    #[test]
    fn nginx_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for format in ["combined", "main", "$remote_addr:$remote_port [$time_iso8601] $msec \"$request\" $status"] {
            let _ = parser(format).parse(&line(text.clone()), &mut Vec::new());
        }
    }

    #[test]
    fn nginx_parser_never_panics_on_near_miss_lines(
        prefix in "[0-9.:a-f\\[\\] -]{0,20}",
        rest in "[ -~]{0,120}",
    ) {
        let text = format!("{prefix} - - [10/Mar/2024:21:07:41 +0800] \"{rest}");
        let _ = parser("main").parse(&line(text), &mut Vec::new());
    }

    #[test]
    fn combined_lines_round_trip(
        ip in any::<[u8; 4]>(),
        user in "[a-z]{1,8}|-",
        day in 1u8..=28, month in 0usize..12, year in 1990u16..2100,
        h in 0u8..24, mi in 0u8..60, s in 0u8..60,
        off_h in 0u8..14, west in any::<bool>(),
        method in "GET|POST|HEAD|PUT|DELETE",
        path in "/[a-zA-Z0-9/._-]{0,30}(\\?[a-z0-9=&]{1,20})?",
        status in 100u16..600,
        bytes in any::<u32>(),
        referrer in field_text(),
        ua in field_text(),
    ) {
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let addr = std::net::Ipv4Addr::from(ip);
        let sign = if west { '-' } else { '+' };
        let text = format!(
            "{addr} - {user} [{day:02}/{}/{year}:{h:02}:{mi:02}:{s:02} {sign}{off_h:02}00] \"{method} {path} HTTP/1.1\" {status} {bytes} \"{referrer}\" \"{ua}\"",
            MONTHS[month]
        );
        let mut out = Vec::new();
        parser("combined").parse(&line(text.clone()), &mut out).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let ev = &out[0];
        prop_assert_eq!(ev.source_ip, Some(std::net::IpAddr::V4(addr)));
        prop_assert_eq!(ev.user_name.as_deref(), (user != "-").then_some(user.as_str()));
        prop_assert_eq!(ev.method.as_deref(), Some(method.as_str()));
        prop_assert_eq!(ev.url_original.as_deref(), Some(path.as_str()));
        prop_assert_eq!(ev.status, Some(status));
        prop_assert_eq!(ev.bytes, Some(u64::from(bytes)));
        let dash = |v: &str| (!v.is_empty() && v != "-").then(|| v.to_owned());
        prop_assert_eq!(ev.referrer.as_deref().map(str::to_owned), dash(&referrer));
        prop_assert_eq!(ev.user_agent.as_deref().map(str::to_owned), dash(&ua));
        let offset = i32::from(off_h) * 3600 * if west { -1 } else { 1 };
        prop_assert_eq!(ev.tz_offset_secs, Some(offset));
        let civil = jiff::civil::DateTime::new(year as i16, month as i8 + 1, day as i8, h as i8, mi as i8, s as i8, 0).unwrap();
        let expected = jiff::tz::Offset::from_seconds(offset).unwrap().to_timestamp(civil).unwrap();
        prop_assert_eq!(ev.timestamp, expected);
    }
}

proptest! {
    #[test]
    fn auto_parser_never_panics(text in "\\PC{0,200}", prefix in "(2024/05/12 03:41:07 \\[error\\] 1#1: |\\[client |\\{|Security Log - Request: |Mar  5 10:00:01 h sshd\\[1\\]: )?") {
        let cfg = palisade::config::SourceConfig {
            parser: palisade::config::ParserConfig::Auto,
            ..Default::default()
        };
        let mut p = palisade::parse::build(&cfg, &NetworkConfig::default()).unwrap();
        let mut out = Vec::new();
        let _ = p.parse(&line(format!("{prefix}{text}")), &mut out);
        p.flush(&mut out);
    }
}
