// Signed chain heads (see src/audit/README.md, "Anchoring"), shared by the shipper
// (signs and stores them in audit_head), the journal (a new epoch) and verify (checks).
//
// The signed message is a fixed text, so any tool can recompute it:
//   "continuum-audit-head v1\n<kind>\n<node_id>\n<seq>\n<hash>\n<signed_at>\n"
// kind is "head" or "epoch"; signed_at is RFC 3339 UTC with milliseconds (the value
// stored in audit_head.signed_at). Keys and signatures are lower-case hex (Ed25519:
// 32-byte public key, 64-byte signature).
#pragma once

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace continuum::audit::internal {

struct SigningKey {
  std::array<unsigned char, 32> public_key{};
  std::array<unsigned char, 64> secret_key{};
  std::string public_hex() const;
};

// Reads the node's Ed25519 key (64 bytes: libsodium's secret key, which holds the
// public key in its second half), creating it (mode 0600, written atomically) if the
// file does not exist. Throws std::runtime_error naming the file.
SigningKey LoadOrCreateSigningKey(const std::string& path);

std::string HeadMessage(std::string_view kind, std::string_view node_id, long long seq,
                        std::string_view hash, std::string_view signed_at);
// Hex detached signature of `message`.
std::string SignHex(const SigningKey& key, std::string_view message);
// True if `signature_hex` is a valid signature of `message` by `public_key_hex`.
bool VerifyHex(std::string_view public_key_hex, std::string_view signature_hex,
               std::string_view message);

// The prev_hash of the first record of an epoch that starts at `seq` (> 1): hex
// SHA-256 of "epoch:<node_id>:<seq>". A chain whose records 1..seq-1 are in the table
// but not in a (lost or replaced) journal folder continues there, with new seqs, so it
// never collides with rows already shipped.
std::string EpochGenesisHash(std::string_view node_id, long long seq);

// A trusted-keys file: one "<node_id> <hex public key>" per line; '#' starts a comment.
// A node may have several keys (rotation). Throws std::runtime_error naming the line.
std::map<std::string, std::set<std::string>> ReadTrustedKeys(const std::string& path);

}  // namespace continuum::audit::internal
