//! Sprig/Helm function results as Helm prints them (expected values from Sprig's docs/tests).

use crate::tmpl::Engine;
use crate::value::Value;

fn r(src: &str) -> String {
    let data = crate::yaml::parse_values(
        "n: 3\ns: hello world\nl: [b, a, c]\nm: {k: v, x: {y: 1}}\nf: 1.5\n",
    )
    .unwrap_or_default();
    let mut e = Engine::new();
    if let Err(err) = e.add("t", src) {
        return format!("PARSE: {err}");
    }
    e.execute("t", &data)
        .unwrap_or_else(|err| format!("EXEC: {err}"))
}

#[test]
fn string_functions() {
    let cases = [
        ("{{ title .s }}", "Hello World"),
        ("{{ .s | upper | trunc 5 }}", "HELLO"),
        ("{{ \"  x  \" | trim | quote }}", "\"x\""),
        ("{{ squote .s }}", "'hello world'"),
        ("{{ trimSuffix \"-\" \"abc-\" }}", "abc"),
        ("{{ replace \" \" \"-\" .s }}", "hello-world"),
        ("{{ .s | indent 2 }}", "  hello world"),
        ("{{ \"a\\nb\" | nindent 2 }}", "\n  a\n  b"),
        ("{{ contains \"wor\" .s }}", "true"),
        ("{{ repeat 3 \"ab\" }}", "ababab"),
        ("{{ substr 0 5 .s }}", "hello"),
        ("{{ snakecase \"FirstName\" }}", "first_name"),
        ("{{ camelcase \"http_server\" }}", "HttpServer"),
        ("{{ kebabcase \"FirstName\" }}", "first-name"),
        ("{{ abbrev 5 \"hello world\" }}", "he..."),
        ("{{ abbrevboth 5 10 \"1234 5678 9123\" }}", "...5678..."),
        (
            "{{ printf \"%s-%s\" \"a\" \"b\" | trunc 63 | trimSuffix \"-\" }}",
            "a-b",
        ),
        ("{{ b64enc \"abc\" }}|{{ b64dec \"YWJj\" }}", "YWJj|abc"),
        (
            "{{ sha256sum \"abc\" }}",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            "{{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"${1}W\" }}",
            "-W-xxW-",
        ),
        ("{{ regexFindAll \"a.\" \"abacad\" -1 }}", "[ab ac ad]"),
        ("{{ splitList \",\" \"a,b\" }}", "[a b]"),
        ("{{ (split \"$\" \"foo$bar\")._1 }}", "bar"),
        ("{{ join \"-\" .l }}", "b-a-c"),
        ("{{ sortAlpha .l }}", "[a b c]"),
        ("{{ cat \"a\" nil \"b\" }}", "a b"),
        ("{{ wrap 5 \"Hello World\" }}", "Hello\nWorld"),
    ];
    for (src, want) in cases {
        assert_eq!(r(src), want, "{src}");
    }
}

#[test]
fn data_functions() {
    let cases = [
        (
            "{{ default \"x\" .missing }}|{{ default \"x\" .n }}|{{ default 5 0 }}",
            "x|3|5",
        ),
        (
            "{{ empty .missing }}{{ empty .l }}{{ empty \"\" }}{{ empty 0 }}",
            "truefalsetruetrue",
        ),
        ("{{ coalesce .missing \"\" \"z\" }}", "z"),
        ("{{ ternary \"y\" \"n\" true }}", "y"),
        (
            "{{ $d := dict \"a\" 1 }}{{ $_ := set $d \"b\" 2 }}{{ $d }}",
            "map[a:1 b:2]",
        ),
        (
            "{{ $d := dict \"a\" 1 \"b\" 2 }}{{ $_ := unset $d \"a\" }}{{ keys $d }}",
            "[b]",
        ),
        ("{{ get .m \"k\" }}|{{ get .m \"nope\" }}|", "v||"),
        ("{{ hasKey .m \"k\" }}", "true"),
        (
            "{{ pick .m \"k\" }}|{{ omit .m \"k\" }}",
            "map[k:v]|map[x:map[y:1]]",
        ),
        (
            "{{ dig \"x\" \"y\" \"d\" .m }}|{{ dig \"x\" \"z\" \"d\" .m }}",
            "1|d",
        ),
        (
            "{{ merge (dict \"a\" 1) (dict \"a\" 2 \"b\" 3) }}",
            "map[a:1 b:3]",
        ),
        (
            "{{ mergeOverwrite (dict \"a\" 1) (dict \"a\" 2 \"b\" 3) }}",
            "map[a:2 b:3]",
        ),
        ("{{ pluck \"a\" (dict \"a\" 1) (dict \"a\" 2) }}", "[1 2]"),
        (
            "{{ list 1 2 | append 3 | len }}",
            "EXEC: template: t:1:14: executing \"t\" at <append 3>: error calling append: cannot append on type int",
        ),
        (
            "{{ append (list 1 2) 3 }}|{{ prepend (list 1) 0 }}|{{ first .l }}|{{ last .l }}",
            "[1 2 3]|[0 1]|b|c",
        ),
        (
            "{{ rest .l }}|{{ initial .l }}|{{ reverse .l }}",
            "[a c]|[b a]|[c a b]",
        ),
        (
            "{{ uniq (list 1 1 2) }}|{{ without (list 1 2 3) 2 }}|{{ has \"a\" .l }}",
            "[1 2]|[1 3]|true",
        ),
        (
            "{{ compact (list 1 \"\" nil 2) }}|{{ concat (list 1) (list 2) }}",
            "[1 2]|[1 2]",
        ),
        (
            "{{ until 3 }}|{{ untilStep 0 10 4 }}|{{ seq 3 }}",
            "[0 1 2]|[0 4 8]|1 2 3",
        ),
        (
            "{{ add 1 2 3 }}|{{ sub 5 2 }}|{{ mul 2 3 }}|{{ div 7 2 }}|{{ mod 7 2 }}",
            "6|3|6|3|1",
        ),
        (
            "{{ max 1 5 3 }}|{{ min 4 2 }}|{{ add1 .n }}|{{ floor 1.7 }}|{{ ceil 1.2 }}|{{ round 1.55 1 }}",
            "5|2|4|1|2|1.6",
        ),
        (
            "{{ int \"42\" }}|{{ int64 .f }}|{{ float64 \"1.5\" }}|{{ atoi \"7\" }}",
            "42|1|1.5|7",
        ),
        (
            "{{ typeOf .n }}|{{ kindOf .l }}|{{ kindIs \"map\" .m }}|{{ typeIs \"string\" .s }}",
            "float64|slice|true|true",
        ),
        (
            "{{ toJson .m }}|{{ toYaml .l }}",
            "{\"k\":\"v\",\"x\":{\"y\":1}}|- b\n- a\n- c",
        ),
        (
            "{{ (fromYaml \"a: 1\").a }}|{{ (fromJson \"{\\\"a\\\": [1]}\").a }}",
            "1|[1]",
        ),
        (
            "{{ (fromYaml \"- x\").Error }}",
            "error unmarshaling JSON: json: cannot unmarshal slice into Go value of type map[string]interface {}",
        ),
        (
            "{{ semverCompare \">=1.2.0\" \"1.10.0\" }}|{{ (semver \"1.2.3-beta\").Prerelease }}",
            "true|beta",
        ),
        (
            "{{ toToml (dict \"a\" 1 \"t\" (dict \"b\" \"c\")) }}",
            "a = 1\n\n[t]\nb = \"c\"\n",
        ),
        ("{{ lookup \"v1\" \"Secret\" \"ns\" \"name\" }}", "map[]"),
        ("{{ required \"need it\" .s }}", "hello world"),
        (
            "{{ fail \"boom\" }}",
            "EXEC: template: t:1:3: executing \"t\" at <fail \"boom\">: error calling fail: HELM_ERR_STARTboomHELM_ERR_END",
        ),
        ("{{ deepEqual (list 1) (list 1) }}", "true"),
    ];
    for (src, want) in cases {
        assert_eq!(r(src), want, "{src}");
    }
}

#[test]
fn tpl_and_include() {
    let data = Value::map(std::collections::BTreeMap::from([
        (
            "Values".to_string(),
            crate::yaml::parse_values("name: x\nt: \"{{ .Values.name }}-y\"\n").unwrap_or_default(),
        ),
        (
            "Template".to_string(),
            Value::map(std::collections::BTreeMap::from([
                ("Name".to_string(), Value::str("c/templates/a.yaml")),
                ("BasePath".to_string(), Value::str("c/templates")),
            ])),
        ),
    ]));
    let mut e = Engine::new();
    assert!(e.add("t", "{{ define \"h\" }}[{{ .Values.name }}]{{ end }}{{ tpl .Values.t . }}|{{ tpl \"{{ include \\\"h\\\" . }}\" . }}|{{ tpl \"{{ .Values.nope }}\" . }}|").is_ok());
    assert_eq!(
        e.execute("t", &data).map_err(|e| e.0),
        Ok("x-y|[x]||".to_string())
    );
    assert!(e.add("u", "{{ tpl \"{{ .Values.name.x }}\" . }}").is_ok());
    let err = e
        .execute("u", &data)
        .map_err(|e| e.0)
        .err()
        .unwrap_or_default();
    assert!(err.contains("error calling tpl: error during tpl function execution for \"{{ .Values.name.x }}\": template: c/templates/a.yaml:1:10:"), "{err}");
}

/// Every function in Helm's function map (Sprig's GenericFuncMap plus Helm's own) exists,
/// so no chart fails to parse for want of a name.
#[test]
fn helm_function_map_is_complete() {
    let names = [
        "hello",
        "ago",
        "date",
        "date_in_zone",
        "date_modify",
        "dateInZone",
        "dateModify",
        "duration",
        "durationRound",
        "htmlDate",
        "htmlDateInZone",
        "must_date_modify",
        "mustDateModify",
        "mustToDate",
        "now",
        "toDate",
        "unixEpoch",
        "abbrev",
        "abbrevboth",
        "trunc",
        "trim",
        "upper",
        "lower",
        "title",
        "untitle",
        "substr",
        "repeat",
        "trimall",
        "trimAll",
        "trimSuffix",
        "trimPrefix",
        "nospace",
        "initials",
        "randAlphaNum",
        "randAlpha",
        "randAscii",
        "randNumeric",
        "swapcase",
        "shuffle",
        "snakecase",
        "camelcase",
        "kebabcase",
        "wrap",
        "wrapWith",
        "contains",
        "hasPrefix",
        "hasSuffix",
        "quote",
        "squote",
        "cat",
        "indent",
        "nindent",
        "replace",
        "plural",
        "sha1sum",
        "sha256sum",
        "adler32sum",
        "toString",
        "atoi",
        "int64",
        "int",
        "float64",
        "seq",
        "toDecimal",
        "split",
        "splitList",
        "splitn",
        "toStrings",
        "until",
        "untilStep",
        "add1",
        "add",
        "sub",
        "div",
        "mod",
        "mul",
        "randInt",
        "add1f",
        "addf",
        "subf",
        "divf",
        "mulf",
        "biggest",
        "max",
        "min",
        "maxf",
        "minf",
        "ceil",
        "floor",
        "round",
        "join",
        "sortAlpha",
        "default",
        "empty",
        "coalesce",
        "all",
        "any",
        "compact",
        "mustCompact",
        "fromJson",
        "toJson",
        "toPrettyJson",
        "toRawJson",
        "mustFromJson",
        "mustToJson",
        "mustToPrettyJson",
        "mustToRawJson",
        "ternary",
        "deepCopy",
        "mustDeepCopy",
        "typeOf",
        "typeIs",
        "typeIsLike",
        "kindOf",
        "kindIs",
        "deepEqual",
        "getHostByName",
        "base",
        "dir",
        "clean",
        "ext",
        "isAbs",
        "osBase",
        "osClean",
        "osDir",
        "osExt",
        "osIsAbs",
        "b64enc",
        "b64dec",
        "b32enc",
        "b32dec",
        "tuple",
        "list",
        "dict",
        "get",
        "set",
        "unset",
        "hasKey",
        "pluck",
        "keys",
        "pick",
        "omit",
        "merge",
        "mergeOverwrite",
        "mustMerge",
        "mustMergeOverwrite",
        "values",
        "append",
        "push",
        "mustAppend",
        "mustPush",
        "prepend",
        "mustPrepend",
        "first",
        "mustFirst",
        "rest",
        "mustRest",
        "last",
        "mustLast",
        "initial",
        "mustInitial",
        "reverse",
        "mustReverse",
        "uniq",
        "mustUniq",
        "without",
        "mustWithout",
        "has",
        "mustHas",
        "slice",
        "mustSlice",
        "concat",
        "dig",
        "chunk",
        "mustChunk",
        "bcrypt",
        "htpasswd",
        "genPrivateKey",
        "derivePassword",
        "buildCustomCert",
        "genCA",
        "genCAWithKey",
        "genSelfSignedCert",
        "genSelfSignedCertWithKey",
        "genSignedCert",
        "genSignedCertWithKey",
        "encryptAES",
        "decryptAES",
        "randBytes",
        "uuidv4",
        "semver",
        "semverCompare",
        "fail",
        "regexMatch",
        "mustRegexMatch",
        "regexFindAll",
        "mustRegexFindAll",
        "regexFind",
        "mustRegexFind",
        "regexReplaceAll",
        "mustRegexReplaceAll",
        "regexReplaceAllLiteral",
        "mustRegexReplaceAllLiteral",
        "regexSplit",
        "mustRegexSplit",
        "regexQuoteMeta",
        "urlParse",
        "urlJoin",
        "toToml",
        "fromToml",
        "toYaml",
        "mustToYaml",
        "fromYaml",
        "fromYamlArray",
        "fromJsonArray",
        "include",
        "tpl",
        "required",
        "lookup",
        "toYamlPretty",
    ];
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !crate::funcs::exists(n))
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
    assert!(!crate::funcs::exists("env"), "env is removed by Helm");
}
