//! Helm's own strvals tests (pkg/strvals/parser_test.go), compared as JSON.

use super::{Mode, parse, parse_into};
use crate::value::Value;

fn j(v: &Value) -> String {
    crate::funcs::to_json_string(v, true, None)
}

#[test]
fn parse_set_cases() {
    let ok = [
        (
            "name1=null,f=false,t=true",
            r#"{"f":false,"name1":null,"t":true}"#,
        ),
        (
            "name1=value1,name2=value2,",
            r#"{"name1":"value1","name2":"value2"}"#,
        ),
        ("name1=,name2=value2", r#"{"name1":"","name2":"value2"}"#),
        ("leading_zeros=00009", r#"{"leading_zeros":"00009"}"#),
        ("zero_int=0", r#"{"zero_int":0}"#),
        ("long_int=1234567890", r#"{"long_int":1234567890}"#),
        (
            r"name1=one\,two,name2=three\,four",
            r#"{"name1":"one,two","name2":"three,four"}"#,
        ),
        (
            r"name1=one\=two,name2=three\=four",
            r#"{"name1":"one=two","name2":"three=four"}"#,
        ),
        (
            "name1=one two three,name2=three two one",
            r#"{"name1":"one two three","name2":"three two one"}"#,
        ),
        (
            "outer.inner1=value,outer.middle.inner=value",
            r#"{"outer":{"inner1":"value","middle":{"inner":"value"}}}"#,
        ),
        ("name1.name2=", r#"{"name1":{"name2":""}}"#),
        (
            "name1={value1,value2},name2={value1,value2}",
            r#"{"name1":["value1","value2"],"name2":["value1","value2"]}"#,
        ),
        ("name1={1021,902}", r#"{"name1":[1021,902]}"#),
        (
            "list[0].foo=bar,list[0].hello=world",
            r#"{"list":[{"foo":"bar","hello":"world"}]}"#,
        ),
        (
            "list[0]=foo,list[3]=bar",
            r#"{"list":["foo",null,null,"bar"]}"#,
        ),
        ("noval[0]", r#"{"noval":[]}"#),
        ("noval[0]=", r#"{"noval":[""]}"#),
        ("nested[1][1]=1", r#"{"nested":[null,[null,1]]}"#),
        (
            "name1.name2[1].foo=bar,name1.name2[0].foo=bar",
            r#"{"name1":{"name2":[{"foo":"bar"},{"foo":"bar"}]}}"#,
        ),
    ];
    for (input, want) in ok {
        let got = parse(input, Mode::Typed).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(j(&got), want, "{input}");
    }
    let bad = [
        "name1=value1,,,,name2=value2,",
        "name1,name2=",
        "name1,name2=value2",
        "name1,name2",
        "name1.name2",
        "name1.name2,name1.name3",
        "name1.=name2",
        "name1.,name2",
        "name1={1021,902",
        "list[0].foo=bar,list[-30].hello=world",
        "list[0]=foo,list[-20]=bar",
        "illegal[0]name.foo=bar",
        "]={}].",
    ];
    for input in bad {
        assert!(parse(input, Mode::Typed).is_err(), "{input} should fail");
    }
    let strings = [
        (
            "long_int_string=1234567890",
            r#"{"long_int_string":"1234567890"}"#,
        ),
        ("is_null=null", r#"{"is_null":"null"}"#),
    ];
    for (input, want) in strings {
        assert_eq!(
            j(&parse(input, Mode::String).unwrap_or_default()),
            want,
            "{input}"
        );
    }
}

#[test]
fn parse_into_existing() {
    let base =
        crate::yaml::parse_values("outer: {inner1: overwrite, inner2: value2}").unwrap_or_default();
    assert!(
        parse_into(
            "outer.inner1=value1,outer.inner3=value3,outer.inner4=4",
            &base,
            Mode::Typed
        )
        .is_ok()
    );
    assert_eq!(
        j(&base),
        r#"{"outer":{"inner1":"value1","inner2":"value2","inner3":"value3","inner4":4}}"#
    );
    let m = Value::empty_map();
    assert!(parse_into("listOuter[0][0].type=listValue", &m, Mode::Typed).is_ok());
    assert!(parse_into("listOuter[0][0].status=alive", &m, Mode::Typed).is_ok());
    assert_eq!(
        j(&m),
        r#"{"listOuter":[[{"status":"alive","type":"listValue"}]]}"#
    );
}

#[test]
fn parse_json_cases() {
    let base = crate::yaml::parse_values("outer: {inner1: {x: overwrite}, inner2: value2}")
        .unwrap_or_default();
    let input =
        r#"outer.inner1=,outer.inner3={"aa":"1","bb":2,"cc":[1,2,3]},outer.inner3.cc[1]=null"#;
    assert!(parse_into(input, &base, Mode::Json).is_ok());
    assert_eq!(
        j(&base),
        r#"{"outer":{"inner1":null,"inner2":"value2","inner3":{"aa":"1","bb":2,"cc":[1,null,3]}}}"#
    );
    let bad = r#"outer.inner5={"A":"1","B":2,"C":[1,2,3]}]"#;
    assert!(parse_into(bad, &Value::empty_map(), Mode::Json).is_err());
}
