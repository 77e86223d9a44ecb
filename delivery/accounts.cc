#include "delivery/accounts.h"

#include <sodium.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace boxwatch::delivery {
namespace {

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

std::string TokenHash(std::string_view token) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(token.data()), token.size(), nullptr, 0);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return hex;
}

std::string NameProblem(const std::string& name) {
  if (name.empty() || name.size() > 64) return "a name is 1 to 64 characters";
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.' && c != '@')
      return "name " + name + " has a character other than letters, digits, - _ . @";
  return "";
}

std::string RegionsProblem(const std::vector<std::string>& regions) {
  if (regions.empty()) return "give at least one region (or * for all)";
  for (const auto& r : regions) {
    if (r.empty() || r.size() > 64) return "a region is 1 to 64 characters";
    for (unsigned char c : r)
      if (!std::isalnum(c) && c != '-' && c != '_' && c != '*') return "region " + r + " has an unexpected character";
  }
  return "";
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kOfficer: return "officer";
    case Role::kSupervisor: return "supervisor";
    case Role::kAdmin: return "admin";
  }
  return "officer";
}

std::optional<Role> ParseRole(std::string_view text) {
  if (text == "officer") return Role::kOfficer;
  if (text == "supervisor") return Role::kSupervisor;
  if (text == "admin") return Role::kAdmin;
  return std::nullopt;
}

bool Account::MayRead(const std::vector<std::string>& alert_regions) const {
  for (const auto& mine : regions) {
    if (mine == "*") return true;
    for (const auto& r : alert_regions)
      if (r == mine) return true;
  }
  return false;
}

Result<Accounts> Accounts::Load(const std::string& path) {
  if (!SodiumReady()) return Error(Errc::kFatal, "libsodium failed to initialise");
  std::ifstream in(path);
  if (!in)
    return Error(Errc::kNotFound, "cannot read the accounts file " + path +
                                      " (create it with `boxwatch hub users add --accounts " + path + " NAME ...`)");
  Accounts out;
  std::vector<std::string> problems;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    auto f = Split(line, '\t');
    const std::string where = path + ":" + std::to_string(n) + ": ";
    if (f.size() != 5 || (f[0] != "user" && f[0] != "token")) {
      problems.push_back(where + "expected 5 tab-separated fields starting with user or token");
      continue;
    }
    Account a;
    a.is_token = f[0] == "token";
    a.name = f[1];
    if (auto p = NameProblem(a.name); !p.empty()) problems.push_back(where + p);
    auto role = ParseRole(f[2]);
    if (!role) problems.push_back(where + "role " + f[2] + " is not officer, supervisor or admin");
    a.role = role.value_or(Role::kOfficer);
    a.regions = Split(f[3], ',');
    if (auto p = RegionsProblem(a.regions); !p.empty()) problems.push_back(where + p);
    a.hash = f[4];
    if (!a.is_token && a.hash.rfind("$argon2id$", 0) != 0) problems.push_back(where + "the hash is not argon2id");
    if (a.is_token && a.hash.size() != 64) problems.push_back(where + "the token hash is not 64 hex digits");
    out.accounts_.push_back(std::move(a));
  }
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
    return Error(Errc::kInvalidArgument, all);
  }
  return out;
}

Status Accounts::Save(const std::string& path) const {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    const mode_t old = ::umask(077);
    std::ofstream out(tmp, std::ios::trunc);
    ::umask(old);
    if (!out) return Error(Errc::kIo, "cannot write " + tmp);
    out << "# boxwatch hub accounts: edit with `boxwatch hub users` and `boxwatch hub tokens`.\n";
    for (const auto& a : accounts_)
      out << (a.is_token ? "token" : "user") << '\t' << a.name << '\t' << RoleName(a.role) << '\t' << Join(a.regions)
          << '\t' << a.hash << '\n';
    out.flush();
    if (!out) return Error(Errc::kIo, "cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), 0600);
  // On disk before it replaces the old file: a crash leaves one or the other.
  if (const int fd = ::open(tmp.c_str(), O_RDONLY); fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Error(Errc::kIo, "cannot replace " + path);
  return Status::Ok();
}

const Account* Accounts::Find(std::string_view name, bool is_token) const {
  for (const auto& a : accounts_)
    if (a.name == name && a.is_token == is_token) return &a;
  return nullptr;
}

std::string Accounts::HashFor(std::string_view name) const {
  const Account* a = Find(name, false);
  if (a) return a->hash;
  // An unknown name still costs a hash, so timing does not tell names apart.
  static const std::string dummy = [] {
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(out, "stand-in for unknown names", 26, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
      return std::string();
    return std::string(out);
  }();
  return "!" + dummy;  // never verifies: argon2id strings start with '$'
}

bool Accounts::VerifyPassword(const std::string& hash, std::string_view password) {
  if (!SodiumReady() || hash.empty()) return false;
  const bool stand_in = hash[0] == '!';
  const bool ok = crypto_pwhash_str_verify(hash.c_str() + (stand_in ? 1 : 0), password.data(), password.size()) == 0;
  return ok && !stand_in;
}

const Account* Accounts::Verify(std::string_view name, std::string_view password) const {
  const Account* a = Find(name, false);
  const bool ok = VerifyPassword(HashFor(name), password);
  return ok && a ? a : nullptr;
}

const Account* Accounts::VerifyToken(std::string_view token) const {
  if (token.size() < 32) return nullptr;
  const std::string h = TokenHash(token);
  for (const auto& a : accounts_)
    if (a.is_token && ConstantTimeEqual(a.hash, h)) return &a;
  return nullptr;
}

Status Accounts::SetUser(const std::string& name, Role role, const std::vector<std::string>& regions,
                         const std::string& password) {
  if (!SodiumReady()) return Error(Errc::kFatal, "libsodium failed to initialise");
  if (auto p = NameProblem(name); !p.empty()) return Error(Errc::kInvalidArgument, p);
  if (auto p = RegionsProblem(regions); !p.empty()) return Error(Errc::kInvalidArgument, p);
  if (password.size() < 12) return Error(Errc::kInvalidArgument, "a password has at least 12 characters");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return Error(Errc::kFatal, "argon2id ran out of memory");
  Remove(name, false);
  accounts_.push_back(Account{false, name, role, regions, out});
  return Status::Ok();
}

Result<std::string> Accounts::AddToken(const std::string& name, Role role, const std::vector<std::string>& regions) {
  if (!SodiumReady()) return Error(Errc::kFatal, "libsodium failed to initialise");
  if (auto p = NameProblem(name); !p.empty()) return Error(Errc::kInvalidArgument, p);
  if (auto p = RegionsProblem(regions); !p.empty()) return Error(Errc::kInvalidArgument, p);
  const std::string token = "bwt_" + RandomHex(32);
  Remove(name, true);
  accounts_.push_back(Account{true, name, role, regions, TokenHash(token)});
  return token;
}

bool Accounts::Remove(const std::string& name, bool is_token) {
  const auto before = accounts_.size();
  std::erase_if(accounts_, [&](const Account& a) { return a.name == name && a.is_token == is_token; });
  return accounts_.size() != before;
}

std::string RandomHex(size_t bytes) {
  (void)SodiumReady();
  std::vector<unsigned char> buf(bytes);
  randombytes_buf(buf.data(), buf.size());
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), buf.data(), buf.size());
  hex.pop_back();
  return hex;
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace boxwatch::delivery
