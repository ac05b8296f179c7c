use super::*;

#[test]
fn identifiers_are_quoted_when_needed() {
    assert_eq!(escape_ident("spooky"), "spooky");
    assert_eq!(escape_ident("my-db"), "`my-db`");
    assert_eq!(escape_ident("a`b"), "`a\\`b`");
    assert_eq!(escape_ident("1abc"), "`1abc`");
}

#[test]
fn sdk_transaction_conflicts_are_retryable() {
    let conflict = surrealdb::Error::query(
        "Transaction conflict: Write conflict. This transaction can be retried".into(),
        QueryError::TransactionConflict,
    );
    let error = DbError::from_sdk("LIVE SELECT", conflict);
    assert!(error.is_conflict(), "{error:?}");
    assert!(!error.is_unavailable(), "{error:?}");
    assert!(error.to_string().contains("LIVE SELECT"), "{error}");

    let other = surrealdb::Error::query("Parse error".into(), None);
    assert!(!DbError::from_sdk("LIVE SELECT", other).is_conflict());
}

#[test]
fn transaction_text() {
    let mut q = Query::transaction();
    q.push("CREATE a:1;");
    q.push("CREATE a:2");
    assert_eq!(
        q.text(),
        "BEGIN TRANSACTION;\nCREATE a:1;\nCREATE a:2;\nCOMMIT TRANSACTION;\n"
    );
}
