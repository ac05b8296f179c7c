use super::worth_a_group;

#[test]
fn a_second_group_starts_only_when_as_big_as_what_is_in_flight() {
    // Nothing in flight: any waiting ingest goes at once.
    assert!(worth_a_group(1, 0));
    // One ingest in flight (a lone client, or the start of a burst).
    assert!(worth_a_group(1, 1));
    // A group of 16 in flight: 3 waiting ingests join the next group
    // instead of paying a transaction of their own; 16 start one.
    assert!(!worth_a_group(3, 16));
    assert!(!worth_a_group(15, 16));
    assert!(worth_a_group(16, 16));
    assert!(worth_a_group(20, 16));
}
