//! Semantic versions and version constraints in the Masterminds dialect (Go's
//! `github.com/Masterminds/semver/v3`), which Flux uses for `GitRepository.spec.ref.semver` and
//! Helm for chart version ranges.
//!
//! The dialect differs from Cargo's: comparators in a group are separated by spaces or commas
//! (`">= 1.2, < 2"` and `">=1.2 <2"` mean the same), groups by `||`, hyphen ranges
//! (`"1.2 - 1.4.5"`) and wildcards (`1.2.x`, `*`) are allowed, a missing minor or patch number
//! acts as a wildcard, and a prerelease version only satisfies a group in which some
//! comparator carries a prerelease itself.
//!
//! Start with [`Constraint::parse`] and [`Constraint::matches`], or [`highest_match`] to pick
//! the newest of a list of tags.

use std::cmp::Ordering;
use std::fmt;

/// A version, parsed leniently as Masterminds' `NewVersion` does: an optional `v`, one to three
/// numbers (missing ones are zero), an optional `-prerelease` and `+build` (ignored when
/// comparing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Patch number.
    pub patch: u64,
    /// Dot-separated prerelease identifiers; empty for a release.
    pub prerelease: String,
}

/// Why a version or a constraint does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemverError {
    /// Not a semantic version.
    #[error("{0:?} is not a semantic version")]
    InvalidVersion(String),
    /// Not a constraint in the Masterminds syntax.
    #[error("improper constraint {constraint:?}: {problem}")]
    InvalidConstraint {
        /// The whole constraint as given.
        constraint: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Longest version or constraint text accepted, so parsing stays cheap on any input.
const MAX_LENGTH: usize = 1024;

fn is_identifier(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn dotted_identifiers(text: &str) -> bool {
    text.split('.').all(is_identifier)
}

/// Splits `core[-prerelease][+build]` into its three parts, checking the last two.
fn split_suffixes(text: &str) -> Option<(&str, &str)> {
    let (main, build) = match text.split_once('+') {
        Some((main, build)) => (main, Some(build)),
        None => (text, None),
    };
    if build.is_some_and(|b| !dotted_identifiers(b)) {
        return None;
    }
    let (core, prerelease) = match main.split_once('-') {
        Some((core, pre)) => (core, pre),
        None => (main, ""),
    };
    if !prerelease.is_empty() && !dotted_identifiers(prerelease) {
        return None;
    }
    if main.contains('-') && prerelease.is_empty() {
        return None;
    }
    Some((core, prerelease))
}

impl Version {
    /// Parses `text` leniently (`v1.2`, `1`, `1.2.3-rc.1+build.5`).
    ///
    /// **Errors**: [`SemverError::InvalidVersion`] for anything else, including numbers too
    /// large for 64 bits and numeric prerelease identifiers with leading zeros.
    pub fn parse(text: &str) -> Result<Version, SemverError> {
        let invalid = || SemverError::InvalidVersion(text.chars().take(64).collect());
        if text.len() > MAX_LENGTH {
            return Err(invalid());
        }
        let trimmed = text.strip_prefix('v').unwrap_or(text);
        let (core, prerelease) = split_suffixes(trimmed).ok_or_else(invalid)?;
        let numbers: Vec<&str> = core.split('.').collect();
        if numbers.len() > 3 {
            return Err(invalid());
        }
        let mut parsed = [0u64; 3];
        for (slot, number) in parsed.iter_mut().zip(&numbers) {
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            *slot = number.parse().map_err(|_| invalid())?;
        }
        let leading_zero = prerelease.split('.').any(|part| {
            part.len() > 1 && part.starts_with('0') && part.bytes().all(|b| b.is_ascii_digit())
        });
        if leading_zero {
            return Err(invalid());
        }
        Ok(Version {
            major: parsed[0],
            minor: parsed[1],
            patch: parsed[2],
            prerelease: prerelease.to_string(),
        })
    }

    fn numbers(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }
}

/// Semver precedence of prerelease strings; a release (empty) ranks above any prerelease.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers()
            .cmp(&other.numbers())
            .then_with(|| compare_prerelease(&self.prerelease, &other.prerelease))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.prerelease.is_empty() {
            write!(f, "-{}", self.prerelease)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    Tilde,
    Caret,
}

/// Which part of a comparator's version was a wildcard (`x`, `X`, `*` or missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wildcard {
    None,
    /// `*`: the major number and everything after it.
    Major,
    /// `1.x`, `1`.
    Minor,
    /// `1.2.x`, `1.2`.
    Patch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Version,
    wildcard: Wildcard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    comparators: Vec<Comparator>,
    /// Some comparator names a prerelease, so prerelease versions may match the group.
    allows_prerelease: bool,
}

/// A parsed constraint: groups joined by `||`, each a list of comparators that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    groups: Vec<Group>,
}

const OPERATORS: [(&str, Op); 11] = [
    (">=", Op::GreaterOrEqual),
    ("=>", Op::GreaterOrEqual),
    ("<=", Op::LessOrEqual),
    ("=<", Op::LessOrEqual),
    ("!=", Op::NotEqual),
    ("~>", Op::Tilde),
    (">", Op::Greater),
    ("<", Op::Less),
    ("=", Op::Equal),
    ("~", Op::Tilde),
    ("^", Op::Caret),
];

fn is_wild(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

/// Parses the version of one comparator (`1.2.x`, `v2`, `*`, `1.0.0-rc.1`).
fn comparator_version(text: &str) -> Result<(Version, Wildcard), String> {
    let bad = || format!("{text:?} is not a version");
    let trimmed = text.strip_prefix('v').unwrap_or(text);
    let (core, prerelease) = split_suffixes(trimmed).ok_or_else(bad)?;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(bad());
    }
    for part in &parts {
        if !(is_wild(part) || !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())) {
            return Err(bad());
        }
    }
    let number = |index: usize| -> Result<u64, String> {
        match parts.get(index) {
            Some(part) if !is_wild(part) => part.parse().map_err(|_| bad()),
            _ => Ok(0),
        }
    };
    let missing_or_wild = |index: usize| parts.get(index).is_none_or(|p| is_wild(p));
    let wildcard = if missing_or_wild(0) {
        Wildcard::Major
    } else if missing_or_wild(1) {
        Wildcard::Minor
    } else if missing_or_wild(2) {
        Wildcard::Patch
    } else {
        Wildcard::None
    };
    let version = match wildcard {
        Wildcard::Major => Version {
            major: 0,
            minor: 0,
            patch: 0,
            prerelease: prerelease.to_string(),
        },
        Wildcard::Minor => Version {
            major: number(0)?,
            minor: 0,
            patch: 0,
            prerelease: prerelease.to_string(),
        },
        Wildcard::Patch => Version {
            major: number(0)?,
            minor: number(1)?,
            patch: 0,
            prerelease: prerelease.to_string(),
        },
        Wildcard::None => Version {
            major: number(0)?,
            minor: number(1)?,
            patch: number(2)?,
            prerelease: prerelease.to_string(),
        },
    };
    Ok((version, wildcard))
}

/// Splits a group into (operator, version) tokens; spaces or commas separate comparators, and
/// an operator may be followed by spaces (`>= 1.2`).
fn tokens(group: &str) -> Result<Vec<(Op, String)>, String> {
    let words: Vec<&str> = group
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    // Hyphen ranges: `A - B` is `>= A, <= B`.
    let mut expanded: Vec<String> = Vec::new();
    let mut index = 0;
    while index < words.len() {
        if words.get(index + 1) == Some(&"-") {
            let (Some(low), Some(high)) = (words.get(index), words.get(index + 2)) else {
                return Err("a hyphen range needs a version on both sides".into());
            };
            expanded.push(format!(">={low}"));
            expanded.push(format!("<={high}"));
            index += 3;
        } else {
            expanded.push(words[index].to_string());
            index += 1;
        }
    }
    let mut out = Vec::new();
    let mut pending: Option<Op> = None;
    for word in expanded {
        let (op, rest) = OPERATORS
            .iter()
            .find_map(|(text, op)| word.strip_prefix(text).map(|rest| (Some(*op), rest)))
            .unwrap_or((None, word.as_str()));
        match (pending.take(), op, rest.is_empty()) {
            (Some(_), Some(_), _) => return Err(format!("unexpected operator in {word:?}")),
            (Some(op), None, false) => out.push((op, rest.to_string())),
            (None, Some(op), true) => pending = Some(op),
            (None, op, false) => out.push((op.unwrap_or(Op::Equal), rest.to_string())),
            (_, _, true) => return Err(format!("{word:?} has no version")),
        }
    }
    if pending.is_some() {
        return Err("an operator has no version".into());
    }
    Ok(out)
}

impl Constraint {
    /// Parses a Masterminds constraint such as `">=1.0.0 <2.0.0"`, `"~1.2 || ^3"`, `"1.x"`.
    ///
    /// **Errors**: [`SemverError::InvalidConstraint`] naming what is wrong; an empty group
    /// (`""`, `"1 ||"`) is an error, as in Masterminds.
    pub fn parse(text: &str) -> Result<Constraint, SemverError> {
        let invalid = |problem: String| SemverError::InvalidConstraint {
            constraint: text.chars().take(200).collect(),
            problem,
        };
        if text.len() > MAX_LENGTH {
            return Err(invalid(format!("longer than {MAX_LENGTH} characters")));
        }
        let mut groups = Vec::new();
        for group in text.split("||") {
            let tokens = tokens(group).map_err(invalid)?;
            if tokens.is_empty() {
                return Err(invalid("an empty group".into()));
            }
            let mut comparators = Vec::new();
            for (op, version) in tokens {
                let (version, wildcard) = comparator_version(&version).map_err(invalid)?;
                comparators.push(Comparator {
                    op,
                    version,
                    wildcard,
                });
            }
            let allows_prerelease = comparators.iter().any(|c| !c.version.prerelease.is_empty());
            groups.push(Group {
                comparators,
                allows_prerelease,
            });
        }
        Ok(Constraint { groups })
    }

    /// Whether `version` satisfies some group of the constraint.
    pub fn matches(&self, version: &Version) -> bool {
        self.groups.iter().any(|group| {
            (version.prerelease.is_empty() || group.allows_prerelease)
                && group.comparators.iter().all(|c| c.holds(version))
        })
    }
}

impl Comparator {
    fn holds(&self, v: &Version) -> bool {
        let c = &self.version;
        let dirty = self.wildcard != Wildcard::None;
        let minor_dirty = self.wildcard == Wildcard::Minor;
        let patch_dirty = self.wildcard == Wildcard::Patch;
        match self.op {
            Op::Equal if dirty => self.tilde(v),
            Op::Equal => v.cmp(c) == Ordering::Equal,
            Op::NotEqual => {
                if dirty {
                    if v.major != c.major {
                        return true;
                    }
                    if minor_dirty {
                        return false;
                    }
                    if v.minor != c.minor {
                        return true;
                    }
                    if patch_dirty {
                        return compare_prerelease(&v.prerelease, &c.prerelease) != Ordering::Equal;
                    }
                }
                v.cmp(c) != Ordering::Equal
            }
            Op::Greater => {
                if !dirty {
                    return v > c;
                }
                match v.major.cmp(&c.major) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal if minor_dirty => false,
                    Ordering::Equal if patch_dirty => v.minor > c.minor,
                    Ordering::Equal => v > c,
                }
            }
            Op::Less => v < c,
            Op::GreaterOrEqual => v >= c,
            Op::LessOrEqual => {
                if !dirty {
                    return v <= c;
                }
                if v.major > c.major {
                    return false;
                }
                !(v.major == c.major && v.minor > c.minor && !minor_dirty)
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => {
                if v < c {
                    return false;
                }
                if c.major > 0 || minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                v.patch == c.patch
            }
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v < c {
            return false;
        }
        let any =
            c.numbers() == (0, 0, 0) && !matches!(self.wildcard, Wildcard::Minor | Wildcard::Patch);
        if any {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.wildcard == Wildcard::Minor
    }
}

/// The highest of `candidates` (tag names, say) that parse as versions and satisfy
/// `constraint`, with its parsed version. Candidates that are not versions are skipped. Among
/// equal versions (`v1.0.0` and `1.0.0`) the one listed first wins.
pub fn highest_match<'a>(
    constraint: &Constraint,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<(&'a str, Version)> {
    let mut best: Option<(&'a str, Version)> = None;
    for candidate in candidates {
        let Ok(version) = Version::parse(candidate) else {
            continue;
        };
        if !constraint.matches(&version) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, b)| version > *b) {
            best = Some((candidate, version));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(constraint: &str, version: &str) -> bool {
        let constraint = Constraint::parse(constraint).expect("constraint parses");
        constraint.matches(&Version::parse(version).expect("version parses"))
    }

    #[test]
    fn versions_parse_leniently_and_order_by_precedence() {
        assert_eq!(
            Version::parse("v1.2").expect("parses"),
            Version {
                major: 1,
                minor: 2,
                patch: 0,
                prerelease: String::new()
            }
        );
        assert_eq!(
            Version::parse("1.2.3-rc.1+build.7")
                .expect("parses")
                .prerelease,
            "rc.1"
        );
        for bad in [
            "", "v", "1.2.3.4", "a.b", "1..2", "1.2.3-", "1.2.3-01", "1.2.3+", "-1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} must not parse");
        }
        let v = |s: &str| Version::parse(s).expect("parses");
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.1") < v("1.0.0-alpha.beta"));
        assert!(v("1.0.0-beta.2") < v("1.0.0-beta.11"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert!(v("1.0.0") < v("1.0.1"));
        assert_eq!(v("1.0.0+a").cmp(&v("1.0.0+b")), Ordering::Equal);
    }

    #[test]
    fn comparators_and_separators() {
        assert!(holds(">=1.0.0 <2.0.0", "1.5.0"));
        assert!(holds(">= 1.0.0, < 2.0.0", "1.5.0"));
        assert!(!holds(">= 1.2, < 3.0.0", "1.0.0"), "both bounds hold");
        assert!(!holds(">=1.0.0 <2.0.0", "2.0.0"));
        assert!(holds("=1.2.3", "1.2.3"));
        assert!(holds("1.2.3", "v1.2.3"));
        assert!(!holds("1.2.3", "1.2.4"));
        assert!(holds("!=1.2.3", "1.2.4"));
        assert!(holds(">1.2.3", "1.2.4"));
        assert!(holds("<=1.2.3", "1.2.3"));
        assert!(holds("=>1.2.3", "1.2.3"));
        assert!(holds("=<1.2.3", "1.2.3"));
    }

    #[test]
    fn wildcards_and_missing_numbers() {
        assert!(holds("1.2.x", "1.2.9"));
        assert!(!holds("1.2.x", "1.3.0"));
        assert!(holds("1.x", "1.9.0"));
        assert!(holds("1.2", "1.2.5"), "a missing patch is a wildcard");
        assert!(holds("*", "9.9.9"));
        assert!(holds(">1.2", "1.3.0"));
        assert!(!holds(">1.2", "1.2.5"));
        assert!(!holds(">1", "1.9.0"));
        assert!(holds("<=1.2", "1.2.9"));
        assert!(!holds("<=1.2", "1.3.0"));
        assert!(!holds("!=1.x", "1.5.0"));
        assert!(holds("!=1.x", "2.0.0"));
    }

    #[test]
    fn tilde_and_caret() {
        assert!(holds("~1.2.3", "1.2.9"));
        assert!(!holds("~1.2.3", "1.3.0"));
        assert!(holds("~1", "1.9.0"));
        assert!(!holds("~1", "2.0.0"));
        assert!(holds("~>1.2", "1.2.0"));
        assert!(holds("^1.2.3", "1.9.0"));
        assert!(!holds("^1.2.3", "2.0.0"));
        assert!(!holds("^1.2.3", "1.2.2"));
        assert!(holds("^0.2.3", "0.2.9"));
        assert!(!holds("^0.2.3", "0.3.0"));
        assert!(holds("^0.0.3", "0.0.3"));
        assert!(!holds("^0.0.3", "0.0.4"));
        assert!(holds("^0.0", "0.0.9"));
        assert!(!holds("^0.0", "0.1.0"));
        assert!(holds("^0", "0.9.0"));
    }

    #[test]
    fn hyphen_ranges_and_alternatives() {
        assert!(holds("1.2 - 1.4.5", "1.3.0"));
        assert!(holds("1.2 - 1.4.5", "1.4.5"));
        assert!(!holds("1.2 - 1.4.5", "1.4.6"));
        assert!(holds("<1.0 || >=2.0", "2.1.0"));
        assert!(holds("<1.0 || >=2.0", "0.9.0"));
        assert!(!holds("<1.0 || >=2.0", "1.5.0"));
    }

    #[test]
    fn prereleases_need_a_prerelease_comparator_in_their_group() {
        assert!(!holds(">=1.0.0", "1.5.0-beta.1"));
        assert!(holds(">=1.0.0-0", "1.5.0-beta.1"));
        assert!(holds(">=1.19-0", "v1.20.0"));
        assert!(holds(">=1.23.0-0", "1.30.0"));
        assert!(!holds(">=1.23.0-0", "1.20.0"));
        assert!(!holds(">=2.0.0-0 || <1.0", "1.5.0-rc.1"));
    }

    #[test]
    fn improper_constraints_are_errors() {
        for bad in [
            "",
            "||",
            ">=",
            ">= ",
            "1.2 -",
            "foo",
            ">=1.0 || ",
            "> >1",
            "1.2.3.4",
            "~x.y",
        ] {
            assert!(Constraint::parse(bad).is_err(), "{bad:?} must not parse");
        }
        let long = "1".repeat(2000);
        assert!(Constraint::parse(&long).is_err());
    }

    #[test]
    fn highest_match_picks_the_newest_tag() {
        let constraint = Constraint::parse("~6.0").expect("parses");
        let tags = [
            "v5.9.0",
            "6.0.0",
            "v6.0.3",
            "6.0.10-rc.1",
            "latest",
            "v6.1.0",
        ];
        let (tag, version) = highest_match(&constraint, tags).expect("a match");
        assert_eq!(tag, "v6.0.3");
        assert_eq!(version.to_string(), "6.0.3");
        let none = Constraint::parse(">=9").expect("parses");
        assert!(highest_match(&none, tags).is_none());
    }
}
