//! A store written by an earlier version opens, and loses the families nothing reads any more
//! (ARCHITECTURE "State: where it lives": a column family nobody reads does not exist).

use ledger_store::{Store, PROJECTOR};

#[test]
fn a_store_with_the_old_dedupe_family_opens_and_drops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state");
    {
        let store = Store::open(&path).expect("new store");
        store.commit(store.batch(), PROJECTOR, 7).expect("commit");
    }
    {
        // As an earlier version left it: an event id → offset family beside the others.
        let options = rocksdb::Options::default();
        let families = rocksdb::DB::list_cf(&options, &path).expect("families");
        let mut db = rocksdb::DB::open_cf(&options, &path, &families).expect("open as written");
        db.create_cf("dedupe", &options).expect("old family");
        db.put_cf(db.cf_handle("dedupe").expect("handle"), b"meta:wamid.1:sent", 3u64.to_be_bytes())
            .expect("put");
    }
    let families = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).expect("families");
    assert!(families.iter().any(|f| f == "dedupe"), "the old family is there before");

    // Read-only opens (queries beside a writer) take the database as it is.
    let reader = Store::open_read_only(&path).expect("read-only open of an old store");
    assert_eq!(reader.offset(PROJECTOR).expect("offset"), 7);
    drop(reader);

    let store = Store::open(&path).expect("writable open of an old store");
    assert_eq!(store.offset(PROJECTOR).expect("offset"), 7, "the state is kept");
    drop(store);
    let families = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).expect("families");
    assert!(!families.iter().any(|f| f == "dedupe"), "dropped: {families:?}");
    Store::open(&path).expect("opens again without it");
}
