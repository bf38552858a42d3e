//! A reproducible corpus of certificates whose subjects are hard to print:
//! RFC 4514 specials, leading `#` and spaces, trailing spaces, UTF-8 of every
//! width, attributes outside RFC 4514's table and multi-valued RDNs, each
//! made by `openssl req -x509` and printed by OpenSSL and by Python's
//! `cryptography`, the two oracles the distinguished-name tests compare with.

use super::python::python3;
use super::{openssl_ec_key, openssl_self_signed, openssl_x509_print, pem_cert};

/// SplitMix64: a fixed, dependency-free generator, so the corpus is the
/// same on every run and a failure is reproducible.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).expect("n fits u64")).expect("fits usize")
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What an attribute's ASN.1 string type can hold (OpenSSL picks the type).
#[derive(Clone, Copy)]
pub enum Charset {
    /// UTF8String: anything.
    Utf8,
    /// IA5String (emailAddress, DC): ASCII.
    Ascii,
    /// PrintableString (serialNumber): letters and digits here.
    Alnum,
    /// PrintableString of exactly two letters (C).
    Country,
}

/// `-subj` short names RFC 4514 §3 also names (so Python prints them as
/// OpenSSL does), weighted towards the common ones.
const RFC4514_ATTRIBUTES: &[(&str, Charset)] = &[
    ("CN", Charset::Utf8),
    ("CN", Charset::Utf8),
    ("O", Charset::Utf8),
    ("O", Charset::Utf8),
    ("OU", Charset::Utf8),
    ("OU", Charset::Utf8),
    ("L", Charset::Utf8),
    ("ST", Charset::Utf8),
    ("C", Charset::Country),
    ("DC", Charset::Ascii),
    ("UID", Charset::Utf8),
];

/// Attributes outside RFC 4514's table: OpenSSL has short names for them,
/// Python prints a dotted OID (or `STREET`).
const OTHER_ATTRIBUTES: &[(&str, Charset)] = &[
    ("emailAddress", Charset::Ascii),
    ("street", Charset::Utf8),
    ("title", Charset::Utf8),
    ("GN", Charset::Utf8),
    ("SN", Charset::Utf8),
    ("serialNumber", Charset::Alnum),
];

/// Value pieces: RFC 4514's specials, characters it leaves alone, and UTF-8
/// of two, three and four bytes. No control characters.
const ASCII_PIECES: &[&str] = &[
    "a", "Z", "q", "7", "0", "x y", " ", ",", "\"", "+", "\\", "<", ">", ";", "=", "#", "/", "'",
    "(", ")", "-", ".", "_", "@", "*", "&", "%", "?", "!", "~",
];
const UTF8_PIECES: &[&str] = &["é", "ü", "ß", "中文", "Ω", "😀"];
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Which dialect differences one certificate may exercise. Most certificates
/// exercise none (escaping only, where both oracles must agree with ours),
/// many exactly one (so ours can be held to one oracle), some all at once.
#[derive(Clone, Copy)]
pub struct Shape {
    pub utf8: bool,
    pub other_attributes: bool,
    pub multi_valued: bool,
}

impl Shape {
    pub fn pick(rng: &mut SplitMix64) -> Shape {
        let (utf8, other_attributes, multi_valued) = match rng.below(20) {
            0..=8 => (false, false, false),
            9..=11 => (true, false, false),
            12..=14 => (false, true, false),
            15..=16 => (false, false, true),
            _ => (true, true, true),
        };
        Shape {
            utf8,
            other_attributes,
            multi_valued,
        }
    }
}

fn awkward_value(rng: &mut SplitMix64, charset: Charset, utf8: bool) -> String {
    match charset {
        Charset::Country => (0..2)
            .map(|_| char::from(b'A' + u8::try_from(rng.below(26)).expect("< 26")))
            .collect(),
        Charset::Alnum => (0..1 + rng.below(8))
            .map(|_| char::from(*rng.pick(ALNUM)))
            .collect(),
        Charset::Ascii | Charset::Utf8 => {
            let utf8 = utf8 && matches!(charset, Charset::Utf8);
            let mut value = String::new();
            if rng.one_in(8) {
                value.push('#');
            }
            if rng.one_in(8) {
                value.push(' ');
            }
            let pieces = 1 + rng.below(8);
            // A UTF-8 shape puts at least one UTF-8 piece in each such value.
            let forced = if utf8 { rng.below(pieces) } else { usize::MAX };
            for k in 0..pieces {
                let piece = if k == forced || (utf8 && rng.one_in(5)) {
                    rng.pick(UTF8_PIECES)
                } else {
                    rng.pick(ASCII_PIECES)
                };
                value.push_str(piece);
            }
            if rng.one_in(8) {
                value.push(' ');
            }
            value
        }
    }
}

/// `-subj` escaping: `/` and `+` would end the value, `\` is the escape.
fn subj_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '/' | '+' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A `-subj` argument of 1–6 RDNs in `shape`.
pub fn awkward_subject(rng: &mut SplitMix64, shape: Shape) -> String {
    let rdns = 1 + rng.below(6);
    // The first RDN carries the shape's difference for sure; later ones may.
    let mut subj = String::new();
    for i in 0..rdns {
        subj.push('/');
        let atvs = if shape.multi_valued && (i == 0 || rng.one_in(4)) {
            2 + rng.below(2)
        } else {
            1
        };
        for j in 0..atvs {
            if j > 0 {
                subj.push('+');
            }
            let other = shape.other_attributes && ((i == 0 && j == 0) || rng.one_in(3));
            let (name, charset) = *rng.pick(if other {
                OTHER_ATTRIBUTES
            } else {
                RFC4514_ATTRIBUTES
            });
            subj.push_str(name);
            subj.push('=');
            subj.push_str(&subj_escape(&awkward_value(rng, charset, shape.utf8)));
        }
    }
    subj
}

/// One generated certificate and what each oracle printed for it.
pub struct AwkwardCert {
    /// The `-subj` argument it was made with.
    pub subj: String,
    /// The PEM exactly as OpenSSL wrote it.
    pub pem: String,
    pub der: Vec<u8>,
    /// `openssl x509 -subject -nameopt RFC2253`.
    pub openssl_rfc2253: String,
    /// OpenSSL in CloudFront's log shape (encoded order, `, `, UTF-8 kept).
    pub openssl_log: String,
    /// `cryptography`'s `Name.rfc4514_string()`.
    pub python_rfc4514: String,
}

/// `count` self-signed certificates (one P-256 key) with awkward subjects
/// from the generator seeded with `seed`, and what OpenSSL (two name
/// options) and Python's `cryptography` print for each subject.
pub fn awkward_corpus(count: usize, seed: u64) -> Vec<AwkwardCert> {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl_ec_key(d, "key.pem");
    let mut rng = SplitMix64(seed);
    let mut certs = Vec::with_capacity(count);
    let mut der_files = Vec::with_capacity(count);
    for i in 0..count {
        let shape = Shape::pick(&mut rng);
        let subj = awkward_subject(&mut rng, shape);
        let file = format!("c{i:03}.pem");
        let pem = openssl_self_signed(d, "key.pem", &subj, &(1000 + i).to_string(), &file);
        let der = pem_cert(pem.as_bytes()).as_ref().to_vec();
        let der_file = format!("c{i:03}.der");
        std::fs::write(d.join(&der_file), &der).expect("write DER");
        der_files.push(der_file);
        let openssl_rfc2253 =
            openssl_x509_print(d, &file, &["-subject", "-nameopt", "RFC2253"], "subject=");
        let openssl_log = openssl_x509_print(
            d,
            &file,
            &[
                "-subject",
                "-nameopt",
                "esc_2253,esc_ctrl,utf8,dump_nostr,dump_der,sep_comma_plus_space,sname",
            ],
            "subject=",
        );
        certs.push(AwkwardCert {
            subj,
            pem,
            der,
            openssl_rfc2253,
            openssl_log,
            python_rfc4514: String::new(),
        });
    }
    // One interpreter for all of them.
    let script = r#"
import json, sys
from cryptography import x509
out = []
for name in sys.argv[1:]:
    with open(name, "rb") as f:
        out.append(x509.load_der_x509_certificate(f.read()).subject.rfc4514_string())
print(json.dumps(out))
"#;
    let args: Vec<&str> = der_files.iter().map(String::as_str).collect();
    let printed: Vec<String> =
        serde_json::from_str(&python3(d, script, &args)).expect("python printed a JSON list");
    assert_eq!(printed.len(), certs.len());
    for (cert, p) in certs.iter_mut().zip(printed) {
        cert.python_rfc4514 = p;
    }
    certs
}
