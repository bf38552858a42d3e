//! Fixed test-only private keys (generated with `openssl genpkey` for the fuzz
//! fixtures; they protect nothing). Fixed keys keep the generated certificates
//! identical across runs so corpus entries and crash reproducers stay meaningful.

pub(crate) const ROOT_A: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3/uPRJ3/7eMh3zbx\n\
ME3B/wCECp829nyLWIYg+UEaKO6hRANCAAS9Uiu2Yqd06+cfnujp3gzPwj2krmsm\n\
y9boi4kT48aJj0JkuEUmmf3EjjMCVeoKwMic9BXmxadKE46Hubps01BI\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const ROOT_B: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBgVkhWlGOubYO4W3AI\n\
06JiVV7H/VGzmSU8xc+TCnFNwGlHo6pxp2Kj1RRCBKj3Ki6hZANiAASpjA+sJiYn\n\
U3RPZGkaZuwmweTFQl2Ct1ZRjTc3oCW5tuqhX5FKbRSa6OSTNCNEgG2UnkpKviJK\n\
kJx4vv2zE81rhvbcaN3YCTZjV172F//ZoYcsXLEah3Mh9o2wVt8478E=\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const INTER_0: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgT/UggrW8jaLIzuCE\n\
WXO5pi1KpFTuZCoO7jXYt5OKLCihRANCAAQtCT8y72aD+JOWCq1aKcuaEAeq8c+p\n\
Pc0oQ9isIzPJ6nwc0P6biio8NV5ShGBkSeY+7zOskmR7PLRfzqvlE/4z\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const INTER_1: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgS/dvHNbDVXx3FM5l\n\
+v2XNia4OLhfEO5oNl0HFhtF6Y+hRANCAATySDHEAj7fTMIT3e37GaZr/27Bo38q\n\
9J+Gm3RdH5c1dRLTR2sJWMtW1dlM4xSmQQzD3ufQC6+HAHuMcwgmSySf\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const INTER_2: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgG0v131JSKeBF6+pS\n\
44PWUhLlysQVc8a34Lz2JFoJ2umhRANCAATY/k53yu5qRStg40LFhbcqlZs1FdZ/\n\
ND+1gEJZ7ktTazedT0SxZ0HR63cTHzuLeYJiciloFA4GCStzKjIns0bp\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const INTER_3: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjBcMhKQom8oDEIma\n\
GzGMMh/9hkeDtxG7d8k4hfhA70ShRANCAATCY8bF+0JQsEL8V7a8fMj3BUqJDuwL\n\
mFDPFgals0+ObhhSHS6kFFM5EDJBSlon7IIONhTZAS4vuXw15t3ziqqv\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const INTER_5A: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHJlYPObXDju3klLY\n\
TWe0EhHtUHUJe589VvMoIkl5vgGhRANCAAScAeKrM2iJjeyI6XPCDrKwCthCNWyl\n\
ZtPmmnO4QTgkl0w0x9J2HEfm9BY1e/pYcIUTkyxU5sd8847m8BPhgRXv\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const INTER_5B: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/E1SlDs/7BWZatrY\n\
sZE8P500jhHZd1q8ZYsBsAPVvg+hRANCAASLncEHW+MOe6am6Aqf4IZDTWzJe6LQ\n\
vLTJc0ldd+Qs859ZhYETqyIXA16I7ITH1x1NIPy3oBPg4z6GCRJh3Vdi\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const LEAF_0: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZrqGGnd2p5IZoo8x\n\
fKIXUFf0VCpdrVR7JZgO0aNKugqhRANCAAT2rqSovRVY0Gdy7n1CSPqy46xT67vF\n\
sjJ0m0W2GQwcEG0O+TkasXpLpeeeD7PgTshJGOlhHbc/r/B7WdeX81T6\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const LEAF_1: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgu/yGn3DUDpWrGNbY\n\
2d1iLSS38tOI92uluZcwTMoQcz+hRANCAARKl1hJuXNlNT0ALILA1E/1wSBQZZMb\n\
ZfjpNcNcbcmE3euKzHLVhuJtoZvngw3BBEEw81XlPpiw03+sgV4A07Gm\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const LEAF_2: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHSrNWtoHtJ1zcfPh\n\
hWKluahJT/ysvvCoM64oUnwOU6ehRANCAAQx8koST2MBN6IGTLE8MFn2r2flFiRW\n\
hAqPDtsbQ4qL0x2eFnzU/salRbxvnvHnpdmasf047E4XQMbSnP8yDrl6\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const LEAF_3: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEINj26RgjdhoNhQx2Jltkm8VrD/7Wi0kqw+bHPCZrR7os\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const LEAF_4: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgL5nhQ4O6EuYgdeBK\n\
tRLzXUW9HL8jax5DuHBGKmwEUXOhRANCAASCtHypJW2boENAsSyjaTE9QgAUwJ7w\n\
JTK01GSK/16GhoG8m/8FjKJJ/ABBV28tAZDWL72TJrwHCblUf7cVz/4l\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const LEAF_5: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmC+bDkMOONEBW/+6\n\
HOLHdzZBNgo/i9jno+sIy0e01KehRANCAAStLK/T9otqGMsVB4irI9d9PkV0Zdnv\n\
uxl5e85zR9UaxysJMdqML3rEPwofMNsoD3hW324yIowVLYy92VQxxbBK\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const INTER_6: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqNcpBIcpNZmjIQrW\n\
VS9sXsUizGwAsuwOvDOg3D++dB2hRANCAASxbRvuaZHDySzdIomLUYgTMiSaV3Ww\n\
hnP/WiCa8vYATQQjFTLFNte7uIEpXSKg3rALUKipAoZrm2YobHBSwmue\n\
-----END PRIVATE KEY-----\n\
";

pub(crate) const LEAF_6: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5k+oLWWrVKfLT4sK\n\
Ldqiy2v1aOU4rkzzGkyfOBKx6rmhRANCAAQDagek+XM+/2HhJszeU7JwgVtNZlEq\n\
DMP3Oo3V03qu80l+H2/qp8lcQcNq7K/SP4pKzBB6QzNqzVx9TEOkQMEr\n\
-----END PRIVATE KEY-----\n\
";
