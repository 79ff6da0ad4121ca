//! LFI (CRS 930) and RCE (CRS 932) shapes through the public `Classifier::classify`
//! API, on events as the nginx parser fills them, with the benign look-alikes each shape
//! must not catch.

use palisade::detect::classify::Classifier;
use palisade::event::{AttackClasses, Event};

fn classify(url: &str, ua: &str, referrer: &str) -> Event {
    let mut ev = Event::default();
    ev.set_url(url);
    ev.user_agent = Some(ua.into());
    ev.referrer = Some(referrer.into());
    Classifier::new().classify(&mut ev);
    ev
}

fn flagged(url: &str) -> bool {
    !classify(url, "Mozilla/5.0", "-").attacks.is_empty()
}

#[test]
fn one_backslash_climb_and_servlet_dot_parameters_are_traversal() {
    for url in [
        "/get?arg=..%5Cpineapple",
        "/get?a=..;.%5C.;%5C.",
        "/get?code=../.history",
    ] {
        let ev = classify(url, "Mozilla/5.0", "-");
        assert!(
            ev.attacks.contains(AttackClasses::TRAVERSAL),
            "{url}: {:?}",
            ev.findings
        );
    }
    // One forward-slash climb stays a relative link.
    assert!(!flagged("/get?next=../account"));
}

#[test]
fn kernel_pseudo_files_in_path_query_and_referrer_are_flagged() {
    for url in [
        "/get/sys/class",
        "/get/proc/interrupts",
        "/get?test=/sys/class",
    ] {
        assert!(flagged(url), "{url} missed");
    }
    let ev = classify("/get", "Mozilla/5.0", "cat /proc/self/environ");
    assert!(!ev.attacks.is_empty(), "referrer missed");
    assert!(!flagged("/system/classes/list"));
}

#[test]
fn windows_batch_if_statements_are_command_injection() {
    for q in [
        "foo=IF++++++++EXIST+C%3A%5Cpagefile.sys++CMD",
        "foo=if+not+defined+n1+set+%22n1%3D0%22",
        "foo=IF+%2FI+NOT+1%3D%3D2+++++CMD",
        "foo=if+%281%29+equ+%281%29+echo+hey",
        "foo=%26+FOR+%2FF+%22delims%3D%22+%25G+IN+++%28%27ECHO+foo%27%29DO+%40Echo+%25G",
    ] {
        let ev = classify(&format!("/get?{q}"), "Mozilla/5.0", "-");
        assert!(
            ev.attacks.contains(AttackClasses::CMDI),
            "{q}: {:?}",
            ev.findings
        );
    }
    for q in ["q=if+you+exist+then", "q=what+if+not+now", "q=gift+ideas"] {
        assert!(!flagged(&format!("/search?{q}")), "{q} flagged");
    }
}

#[test]
fn bash_expansions_globs_and_braces_are_command_injection() {
    for q in [
        "x=%24%5B2%2B2%5D",
        "x=%24%28%28%24%28%29%2042%29%29",
        "x=%24%7Bpath%23%7B%7D%2F%7D",
        "x=%3C%28cat%20file%29",
        "x=cat%20/%5B%3F%5Dtc/pa%5B%3F%5Dswd",
        "x=cat%2B%2Fet*%2F*wd",
        "x=%7Bl%2C-lh%7Ds",
        "x=%7B%2Cifconfig%7D",
        "x=%7E%2B",
        "x=!-1!-2",
        "x=alias%20a=b",
        "x=www.google.com;c%24%40at+%2Fet%24%40c%2Fpas%24%40swd",
        "x=%7C%24u%20wget%20test",
        "code=>/tmp/curl",
    ] {
        let ev = classify(&format!("/get?{q}"), "Mozilla/5.0", "-");
        assert!(!ev.attacks.is_empty(), "{q} missed");
    }
    for q in [
        "filter=%24%5B0%5D.name",
        "fields=%7Bid%2Cname%7D",
        "q=%7E",
        "q=wow!",
        "price=%245+off",
        "json=%7B%22a%22%3A1%2C%22b%22%3A2%7D",
        "q=time+for+a+change",
    ] {
        assert!(!flagged(&format!("/search?{q}")), "{q} flagged");
    }
}

#[test]
fn prefixed_and_versioned_commands_and_windows_tools_are_command_injection() {
    for q in [
        "foo=time+sh+-c+whoami",
        "cmd=python3.10%20-c%20x",
        "a=whoami;0",
        "v=image.jpg%26bcdboot%20%2Fr%20file.txt",
        "cmd=%3B%20regedit%20%2FE%20c%3A%5Cfile.reg",
        "a=bin/cscli",
    ] {
        let ev = classify(&format!("/get?{q}"), "Mozilla/5.0", "-");
        assert!(
            ev.attacks.contains(AttackClasses::CMDI),
            "{q}: {:?}",
            ev.findings
        );
    }
}

#[test]
fn command_lines_in_plain_headers_are_command_injection() {
    for ua in [";env", "env --version", "time ifconfig"] {
        let ev = classify("/get", ua, "-");
        assert!(
            ev.attacks.contains(AttackClasses::CMDI),
            "UA {ua}: {:?}",
            ev.findings
        );
    }
    for ua in [
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko)",
        "curl/7.68.0",
        "Wget/1.20.3 (linux-gnu)",
        "Ruby",
        "Java/1.8.0_151",
    ] {
        let ev = classify("/get", ua, "http://example.com/page");
        assert!(ev.attacks.is_empty(), "UA {ua}: {:?}", ev.findings);
    }
}
