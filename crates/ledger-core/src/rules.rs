//! The spec's rule identifiers (`../shared/spec/billing-rules.md`), cited by every entry.

use serde::{Deserialize, Serialize};

macro_rules! rules {
    ($($variant:ident = $id:literal : $summary:literal,)*) => {
        /// A rule of the billing spec. Entries carry the rules that produced them; `explain`
        /// expands each into its one-line summary.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $($variant,)*
        }

        impl Rule {
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The spec's identifier, e.g. `R21`.
            pub fn id(self) -> &'static str {
                match self {
                    $(Rule::$variant => $id,)*
                }
            }

            pub fn summary(self) -> &'static str {
                match self {
                    $(Rule::$variant => $summary,)*
                }
            }

            pub fn from_id(id: &str) -> Option<Rule> {
                match id {
                    $($id => Some(Rule::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

rules! {
    R1 = "R1": "a user message opens or resets the 24 h customer service window",
    R2 = "R2": "free-form messages only inside an open customer service window",
    R4 = "R4": "charges follow delivery: first delivered/read; failed or undelivered is free",
    R8 = "R8": "the template's category at time of use is the one billed",
    R10 = "R10": "era 1: a conversation is a 24 h session opened by a delivered business message",
    R11 = "R11": "era 1: one open conversation; every message joins it",
    R12 = "R12": "era 1: user-initiated inside the service window, business-initiated outside",
    R13 = "R13": "era 1: first 1,000 conversations per WABA per local month are free",
    R14 = "R14": "era 1: the first conversation from an entry point is free",
    R20 = "R20": "era 2+: conversations per category; a template opens its own category",
    R21 = "R21": "a template joins an open conversation of its category, else opens one for 24 h",
    R22 = "R22": "a free-form message joins any open conversation, else opens a service one",
    R24 = "R24": "conversations last exactly 24 h and are never extended",
    R25 = "R25": "a reply within 24 h of an entry point opens a free 72 h entry point conversation",
    R26 = "R26": "era 2: first 1,000 service conversations per WABA per local month are free",
    R40 = "R40": "era 3: service conversations are free and unlimited",
    R50 = "R50": "per-message pricing from 2025-07-01 00:00 in the WABA time zone",
    R51 = "R51": "per-message pricing: each delivered message is evaluated on its own",
    R52 = "R52": "per-message pricing: free markers free_customer_service / free_entry_point",
    R53 = "R53": "per-message pricing: a reply within 24 h of an entry point opens a free 72 h window",
    R56 = "R56": "a utility conversation spanning the switch absorbs utility templates until it ends",
    R59 = "R59": "a group message is charged once per participant it was delivered to; the group shares one service window",
    R80 = "R80": "era 5: 1,000 free service messages per phone number per local month, then charged",
    R81 = "R81": "era 5: utility templates inside the service window are charged",
    R82 = "R82": "from 2026-09-28 the entry point window's length is a rule setting (72 h by default, up to 7 days)",
    R83b = "R83b": "Meta Business Agent messages are charged per token, apart from the rate card and the allowance",
    R83c = "R83c": "AI Provider messages (general_purpose_ai) follow their own policy, not service pricing",
    R84 = "R84": "a max-price message is priced at the status's pricing.cost, provisionally",
    R90 = "R90": "Meta re-categorised the template; the new category applies from its timestamp",
    W1 = "W1": "statuses are merged by timestamp, not arrival order",
    W3 = "W3": "a status before its send record is held, not dropped",
    W4 = "W4": "read implies delivery",
    E8 = "E8": "the provider reported no entry point outcome on the reply: no free entry point",
    Q1 = "Q1": "windows are evaluated at delivery time",
    Q2 = "Q2": "windows are half-open [open, close)",
    Q3 = "Q3": "the entry point reply deadline runs 24 h from the entry message",
    Q11 = "Q11": "a free-form message joins the earliest-opened conversation",
    Q12 = "Q12": "only utility conversations span the per-message switch",
    Q21 = "Q21": "era 1 entry point conversations do not use the free tier",
}

/// The most rules one conclusion cites (its own rules, notes such as E8, R4, R90).
pub const RULE_PATH_MAX: usize = 8;

/// The rules behind one conclusion, in the order they applied. Inline (no allocation): every
/// fact carries one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RulePath {
    len: u8,
    rules: [Rule; RULE_PATH_MAX],
}

impl RulePath {
    pub fn new() -> Self {
        RulePath { len: 0, rules: [Rule::R4; RULE_PATH_MAX] }
    }

    /// Appends a rule; a rule already on the path is not repeated.
    pub fn push(&mut self, rule: Rule) {
        if self.contains(&rule) {
            return;
        }
        let len = usize::from(self.len);
        assert!(len < RULE_PATH_MAX, "a rule path holds at most {RULE_PATH_MAX} rules");
        self.rules[len] = rule;
        self.len += 1;
    }

    pub fn extend(&mut self, rules: &[Rule]) {
        for rule in rules {
            self.push(*rule);
        }
    }
}

impl Default for RulePath {
    fn default() -> Self {
        RulePath::new()
    }
}

impl std::ops::Deref for RulePath {
    type Target = [Rule];

    fn deref(&self) -> &[Rule] {
        &self.rules[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for RulePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for RulePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for RulePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let rules = Vec::<Rule>::deserialize(d)?;
        if rules.len() > RULE_PATH_MAX {
            return Err(serde::de::Error::custom(format!("more than {RULE_PATH_MAX} rules")));
        }
        let mut path = RulePath::new();
        path.extend(&rules);
        Ok(path)
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        Rule::from_id(&id).ok_or_else(|| serde::de::Error::custom(format!("unknown rule {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for rule in Rule::ALL {
            assert_eq!(Rule::from_id(rule.id()), Some(*rule));
            assert!(seen.insert(rule.id()), "duplicate id {}", rule.id());
        }
    }
}
