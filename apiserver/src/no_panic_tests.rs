//! Random and mangled input through every parser a client reaches: nothing may panic.

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn mangled_bodies(rng: &mut rand::rngs::StdRng) -> Vec<Vec<u8>> {
    let seeds: Vec<Vec<u8>> = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}).to_string().into_bytes(),
        br#"{"metadata":{"labels":{"$patch":"replace"}},"spec":{"$setElementOrder/containers":[{"name":"c"}],"containers":[{"$patch":"delete","name":"c"}]}}"#.to_vec(),
        b"kind: ConfigMap\ndata: {a: b}\n".to_vec(),
        b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x04\x0a\x02\x0a\x00".to_vec(),
    ];
    let mut out = Vec::new();
    for seed in &seeds {
        out.push(seed.clone());
        for cut in 0..seed.len() {
            out.push(seed[..cut].to_vec());
        }
        for _ in 0..200 {
            let mut b = seed.clone();
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
            out.push(b);
        }
    }
    for _ in 0..500 {
        let len = rng.random_range(0..64);
        out.push((0..len).map(|_| rng.random()).collect());
    }
    out
}

#[test]
fn decoders_and_patchers_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let schema = keelson_schema::message_for("apps", "v1", "Deployment");
    let live = json!({"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    for body in mangled_bodies(&mut rng) {
        for ct in [
            "application/json",
            "application/yaml",
            crate::codec::PROTOBUF,
            "application/merge-patch+json",
        ] {
            let _ = crate::codec::decode_object(ct, &body, "Deployment");
        }
        let _ = crate::codec::duplicate_fields(&body);
        if let Ok(patch) = serde_json::from_slice::<Value>(&body) {
            let _ = crate::smp::apply(&live, &patch, schema.as_ref());
        }
        for kind in [
            crate::handlers::patch::PatchType::Json,
            crate::handlers::patch::PatchType::Merge,
            crate::handlers::patch::PatchType::Strategic,
        ] {
            let _ = crate::handlers::patch::apply(kind, &live, &body, schema.as_ref());
        }
    }
}

#[test]
fn paths_and_queries_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let alphabet: Vec<char> = "/apis%=&?,.()!-_ a0z".chars().collect();
    for _ in 0..5000 {
        let len = rng.random_range(0..40);
        let s: String = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let _ = crate::request::parse_path(&s);
        let q = crate::request::Query::parse(Some(&s));
        let _ = crate::handlers::list::ListOptions::parse(&q);
        let _ = keelson_apimachinery::labels::Selector::parse(&s);
        let _ = keelson_apimachinery::fields::FieldSelector::parse(&s);
    }
}
