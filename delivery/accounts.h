#pragma once
// The control room's accounts: people (name, role, regions, argon2id password
// hash) and API tokens for machine clients (name, role, regions, BLAKE2b hash
// of the token), kept in one text file that `boxwatch hub users` and
// `boxwatch hub tokens` edit. The file holds no secret in the clear; it is
// written 0600 and replaced atomically.
//
// Format, one record per line, tab-separated, '#' starts a comment:
//   user   <name>  <role>  <region,region,...>  <argon2id hash string>
//   token  <name>  <role>  <region,region,...>  <hex hash of the token>
// A region "*" grants every region of the hub.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace boxwatch::delivery {

enum class Role { kOfficer, kSupervisor, kAdmin };
const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view text);

struct Account {
  bool is_token = false;
  std::string name;
  Role role = Role::kOfficer;
  std::vector<std::string> regions;  // "*" is every region
  std::string hash;
  bool MayRead(const std::vector<std::string>& alert_regions) const;
};

class Accounts {
 public:
  // Reads the file; every problem at once. A missing file is an error that
  // says how to create one.
  static Result<Accounts> Load(const std::string& path);
  Status Save(const std::string& path) const;

  const std::vector<Account>& all() const { return accounts_; }
  const Account* Find(std::string_view name, bool is_token) const;
  // The person whose password this is, or null. Takes argon2id's time
  // (about 0.1 s) whether or not the name exists.
  const Account* Verify(std::string_view name, std::string_view password) const;
  // The hash Verify checks a name against: the account's, or a stand-in
  // (never matching) for an unknown name, so that both cost the same.
  std::string HashFor(std::string_view name) const;
  // argon2id check of `password` against `hash`; thread-safe, no lock held.
  static bool VerifyPassword(const std::string& hash, std::string_view password);
  // The token's account, or null.
  const Account* VerifyToken(std::string_view token) const;

  // Adds or replaces a person. Errors: bad name, role or regions, a password
  // under 12 characters.
  Status SetUser(const std::string& name, Role role, const std::vector<std::string>& regions,
                 const std::string& password);
  // Adds a token (a new random secret, returned once) under `name`.
  Result<std::string> AddToken(const std::string& name, Role role, const std::vector<std::string>& regions);
  // Removes a person or token; false when there was none.
  bool Remove(const std::string& name, bool is_token);

 private:
  std::vector<Account> accounts_;
};

// Random bytes as lower-case hex (libsodium's generator).
std::string RandomHex(size_t bytes);
// Equal without leaking where they differ.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace boxwatch::delivery
