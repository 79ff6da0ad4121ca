//! SQLi (CRS 942) and XSS (CRS 941) shapes through the public classifier on whole
//! request URLs and headers, with benign look-alikes that must stay quiet. Each test
//! is named after the miss or false positive it pins down.

use palisade::detect::classify::Classifier;
use palisade::event::{AttackClasses, Event};

fn classes(url: &str, ua: &str) -> AttackClasses {
    let mut ev = Event::default();
    ev.set_url(url);
    ev.user_agent = Some(ua.into());
    ev.referrer = Some("-".into());
    Classifier::new().classify(&mut ev);
    ev.attacks
}

fn sqli(url: &str) -> bool {
    classes(url, "Mozilla/5.0").contains(AttackClasses::SQLI)
}

fn xss(url: &str) -> bool {
    classes(url, "Mozilla/5.0").contains(AttackClasses::XSS)
}

#[test]
fn quote_less_tautologies_are_sqli_but_false_or_ordering_comparisons_are_not() {
    for url in [
        "/get?a=1=1",
        "/get?a=11%21%3D1",
        "/get?a=1%20is%20not%202",
        "/get?a=42<=>42",
    ] {
        assert!(sqli(url), "{url} should be SQLi");
    }
    for url in [
        "/get?a=11%21%3D11",
        "/get?a=1%20is%20not%201",
        "/compare?value=123%3C456",
    ] {
        assert!(!sqli(url), "{url} is not SQLi");
    }
}

#[test]
fn fragments_starting_with_logic_or_a_statement_are_sqli() {
    for url in [
        "/get?test=;truncate[xx",
        "/api?id=xor%2099>",
        "/check?id=or%2088",
        "/get?var=DROP%20sampletable;--",
        "/get?var2=LIKE%20NULL",
    ] {
        assert!(sqli(url), "{url} should be SQLi");
    }
}

#[test]
fn postgres_json_operators_and_casts_are_sqli() {
    for url in [
        "/get?q=%27%7B%22b%22%3A2%7D%27%3A%3Ajsonb%20%40%20%27%7B%22a%22%3A1%7D%27%3A%3Ajsonb",
        "/get/OR%20%27%7B%22a%22%3A%22b%22%7D%27%20%3F%20%27a%27",
        "/get/index.php?id=1+current_user::int",
    ] {
        assert!(sqli(url), "{url} should be SQLi");
    }
}

#[test]
fn sqli_in_the_user_agent_is_found() {
    // The agent prefilter only opens agents holding quotes, `<`, `%`, `=`, …
    let c = classes("/get", "1' and lo_get(16400)::text::bool and 'true");
    assert!(c.contains(AttackClasses::SQLI));
}

#[test]
fn exclamation_and_quoted_words_in_search_terms_are_not_sqli() {
    for url in [
        "/get?var=having%20pain%21",
        "/search?q=DRESS+WITH+HAT+18%27%3B",
        "/search?q=%22LIKE%22+STAMP",
        "/search?q=PIN+%22AS+IS%22",
        "/search?gallery=1%3D5",
    ] {
        assert!(!sqli(url), "{url} is not SQLi");
    }
}

#[test]
fn tagged_template_and_angular_gadgets_are_xss() {
    for url in [
        "/get?xss=[].sort.call`${alert}1337`",
        "/get?xss=Reflect.apply.call`${navigation.navigate}`",
        "/get/login?user=%20x%20%7B%7Bconstructor.constructor(%27alert(1)%27)()%7D%7D",
        "/get?arg=new%20Function()",
    ] {
        assert!(xss(url), "{url} should be XSS");
    }
}

#[test]
fn obfuscated_tags_and_css_script_urls_are_xss() {
    for url in [
        "/get/xx?id=%2bADw-script%2bAD4-",
        "/get?var=%3C%3Fimport%20implementation%20%3D",
        "/get?foo=bar%3Cf%20o%20r%20m",
        "/get?body=%3C%20x%3A%20script",
        "/get/bar?test=STYLE=X:URL(JAVASCRIPT",
        "/get?%20%20onabcdefgh=%20=vardata",
    ] {
        assert!(xss(url), "{url} should be XSS");
    }
}

#[test]
fn templates_css_and_spaced_text_are_not_xss() {
    for url in [
        "/profile?name=%7B%7B%20user.name%20%7D%7D",
        "/theme?css=background:url(/img/a.png)",
        "/search?q=a%20%3C%20b%20and%20c",
        "/search?q=call%20me%20maybe",
    ] {
        assert!(!xss(url), "{url} is not XSS");
    }
}
