//! What XREADGROUP tells the AOF beyond its reply: the streams whose group got a new consumer
//! from this read (Redis writes an XGROUP CREATECONSUMER before a NOACK read's XGROUP SETID;
//! the consumer's existence afterwards cannot tell whether the read created it).

use std::cell::RefCell;

thread_local! {
    static CREATED: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Records, for the command running on this thread, the keys whose group's consumer it
/// created. XREADGROUP calls it once per run (with nothing, when it created none), so a stale
/// record never outlives the command.
pub(crate) fn note_created_consumers(keys: Vec<Vec<u8>>) {
    CREATED.with_borrow_mut(|c| *c = keys);
}

/// Takes the record [`note_created_consumers`] left (propagation, right after the command).
pub(crate) fn take_created_consumers() -> Vec<Vec<u8>> {
    CREATED.with_borrow_mut(std::mem::take)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_taken_once() {
        note_created_consumers(vec![b"s".to_vec()]);
        assert_eq!(take_created_consumers(), vec![b"s".to_vec()]);
        assert!(take_created_consumers().is_empty());
    }
}
