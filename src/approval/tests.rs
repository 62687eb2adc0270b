use super::*;

#[test]
fn answers_are_found_beside_their_request_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("run-step-1.json");
    std::fs::write(&request, "{}").unwrap();
    for name in [
        "run-step-1.json.sig",
        "run-step-1.json.2.sig",
        "run-step-1.json.deny.sig",
        "run-step-1.json.x.sig",
        "run-step-10.json.sig",
        "run-step-1.json.sig.tmp",
    ] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    let found: Vec<(String, bool)> = signature_files(&request)
        .into_iter()
        .map(|(p, d)| (p.file_name().unwrap().to_str().unwrap().to_string(), d))
        .collect();
    assert_eq!(
        found,
        [
            ("run-step-1.json.2.sig".to_string(), false),
            ("run-step-1.json.deny.sig".to_string(), true),
            ("run-step-1.json.sig".to_string(), false),
        ]
    );
    assert_eq!(
        next_signature_file(&request, false).file_name().unwrap(),
        "run-step-1.json.3.sig"
    );
}

#[test]
fn a_denial_signs_its_reason_with_the_request() {
    assert_eq!(signed_message(b"R", None), b"R");
    assert_eq!(signed_message(b"R", Some(" no ")), b"R\n--\ndeny: no\n");
}
