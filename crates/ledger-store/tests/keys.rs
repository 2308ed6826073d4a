//! Key encodings round-trip, keep scopes apart and sort by time within a scope.

use ledger_core::{AllowanceKind, AllowancePool, ContactKey, LocalMonth, StoredClaim, Timestamp, WabaId};
use ledger_store::keys::{self, Scope, UsageKey};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including separators and NULs an escaping scheme could trip on.
    prop::string::string_regex("(?s).{0,24}").expect("regex")
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        (text(), text(), text()).prop_map(|(waba_id, phone_number_id, user_id)| Scope::Contact {
            waba_id,
            phone_number_id,
            user_id
        }),
        text().prop_map(|waba_id| Scope::Account { waba_id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn event_keys_round_trip(scope in scope(), t in any::<i64>(), id in text()) {
        let key = keys::event_key(&scope, t, &id);
        prop_assert_eq!(keys::decode_event_key(&key).expect("decodes"), (scope, t, id));
    }

    #[test]
    fn entry_index_keys_round_trip(scope in scope(), t in any::<i64>(), id in any::<u128>()) {
        let key = keys::entry_index_key(&scope, t, id);
        prop_assert_eq!(keys::decode_entry_index_key(&key).expect("decodes"), (scope, t, id));
    }

    #[test]
    fn usage_keys_round_trip(parts in prop::collection::vec(text(), 6)) {
        let key = UsageKey {
            waba_id: parts[0].clone(),
            month: parts[1].clone(),
            unit: parts[2].clone(),
            category: parts[3].clone(),
            market: parts[4].clone(),
            pricing_type: parts[5].clone(),
        };
        let encoded = keys::usage_key(&key);
        prop_assert!(encoded.starts_with(&keys::usage_month_prefix(&key.waba_id, &key.month)));
        prop_assert_eq!(keys::decode_usage_key(&encoded).expect("decodes"), key);
    }

    #[test]
    fn dead_letter_keys_round_trip(t in any::<i64>(), n in any::<u64>()) {
        prop_assert_eq!(keys::decode_dead_letter_key(&keys::dead_letter_key(t, n)).expect("decodes"), (t, n));
    }

    /// Within a scope, keys sort by instant (negative instants included); a scope's prefix
    /// never matches a key of another scope.
    #[test]
    fn keys_sort_by_time_and_prefixes_separate_scopes(a in scope(), b in scope(), t1 in any::<i64>(), t2 in any::<i64>()) {
        let k1 = keys::entry_index_key(&a, t1, 0);
        let k2 = keys::entry_index_key(&a, t2, 0);
        prop_assert_eq!(k1.cmp(&k2), t1.cmp(&t2));
        if a != b {
            prop_assert!(!keys::entry_index_key(&b, t1, 7).starts_with(&keys::scope_prefix(&a)));
        }
    }

    /// Decoding arbitrary bytes fails cleanly, never panics.
    #[test]
    fn decoding_garbage_is_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = keys::decode_event_key(&bytes);
        let _ = keys::decode_entry_index_key(&bytes);
        let _ = keys::decode_usage_key(&bytes);
        let _ = keys::decode_dead_letter_key(&bytes);
        let _ = keys::decode_claim_key(&bytes);
        let _ = keys::decode_claim(&bytes, &bytes);
        let _ = keys::decode_phone_number_key(&bytes);
    }

    /// Allowance claims round-trip with their owners, and a pool's claims sort in the order the
    /// allowance grants them: (instant, fact id) (R13, R26, R80).
    #[test]
    fn allowance_claims_round_trip_and_sort_in_grant_order(
        pool in pool(),
        other in pool(),
        claims in prop::collection::vec((any::<i64>(), any::<u128>()), 2..8),
        units in 1u64..500,
        owner in (text(), text(), text()),
    ) {
        let owner = (WabaId::from(owner.0.as_str()), ContactKey::new(&owner.1, &owner.2));
        let mut keyed: Vec<(Vec<u8>, (i64, u128))> =
            claims.iter().map(|&(at, id)| (keys::claim_key(&pool, at, id), (at, id))).collect();
        for (key, (at, id)) in &keyed {
            prop_assert_eq!(keys::decode_claim_key(key).expect("decodes"), (pool.clone(), *at, *id));
            let claim = keys::decode_claim(key, &keys::encode_claim(units, &owner)).expect("decodes");
            let expected =
                StoredClaim { at: Timestamp(*at), fact_id: *id, units, owner: owner.clone() };
            prop_assert_eq!(claim, expected);
            prop_assert!(key.starts_with(&keys::allowance_pool_prefix(&pool)));
            prop_assert!(key.starts_with(&keys::allowance_month_prefix(pool.month)));
            if other != pool {
                prop_assert!(!key.starts_with(&keys::allowance_pool_prefix(&other)));
            }
        }
        keyed.sort();
        let in_key_order: Vec<(i64, u128)> = keyed.into_iter().map(|(_, claim)| claim).collect();
        let mut in_grant_order = in_key_order.clone();
        in_grant_order.sort();
        prop_assert_eq!(in_key_order, in_grant_order);
    }

    #[test]
    fn phone_number_keys_round_trip(phone_number_id in text()) {
        let key = keys::phone_number_key(&phone_number_id);
        prop_assert_eq!(keys::decode_phone_number_key(&key).expect("decodes"), phone_number_id);
    }
}

fn pool() -> impl Strategy<Value = AllowancePool> {
    let kind = prop_oneof![
        Just(AllowanceKind::Era1Conversations),
        Just(AllowanceKind::Era2ServiceConversations),
        Just(AllowanceKind::Era5ServiceMessages),
    ];
    (kind, text(), 2010i32..2100, 1u32..=12).prop_map(|(kind, scope, year, month)| AllowancePool {
        kind,
        scope: scope.into(),
        month: LocalMonth { year, month },
    })
}
