#include "crypto/master_key_source.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "crypto/encoding.h"
#include "crypto/random.h"

namespace connreg::crypto {
namespace {

std::shared_ptr<const MasterKey> FromBase64(std::string text, const std::string& where) {
  auto raw = Base64Decode(text);
  sodium_memzero(text.data(), text.size());
  if (!raw) throw std::runtime_error(where + " is not valid base64");
  if (raw->size() != MasterKey::kBytes) {
    sodium_memzero(raw->data(), raw->size());
    throw std::runtime_error(where + " must decode to 32 bytes (a 256-bit key), not " +
                             std::to_string(raw->size()));
  }
  auto key = std::make_shared<const MasterKey>(*raw);
  sodium_memzero(raw->data(), raw->size());
  return key;
}

// One or more base64 keys separated by newlines, commas or spaces; the first is current.
Keyring ParseKeys(std::string text, const std::string& where) {
  Keyring ring;
  std::string item;
  auto flush = [&] {
    if (item.empty()) return;
    auto key = FromBase64(std::move(item), where);
    item.clear();
    if (!ring.current) {
      ring.current = std::move(key);
    } else if (key->id() != ring.current->id()) {
      ring.previous.push_back(std::move(key));
    }
  };
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == ',' || c == ' ' || c == '\t') {
      flush();
    } else {
      item += c;
    }
  }
  flush();
  sodium_memzero(text.data(), text.size());
  if (!ring.current) throw std::runtime_error(where + " holds no key");
  return ring;
}

}  // namespace

void WritePrivateFile(const std::string& path, const std::string& contents, bool overwrite) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  }
}

Keyring ReadKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read master key file " + path + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return ParseKeys(std::move(text), "master key file " + path);
}

void WriteKeyFile(const std::string& path, const Keyring& keys) {
  std::string text = keys.current->ExportBase64() + "\n";
  for (const auto& k : keys.previous) text += k->ExportBase64() + "\n";
  const std::string tmp = path + ".tmp";
  std::filesystem::remove(tmp);
  WritePrivateFile(tmp, text, /*overwrite=*/false);
  sodium_memzero(text.data(), text.size());
  std::filesystem::rename(tmp, path);
}

LoadedKeys LoadMasterKeys(const MasterKeySettings& s) {
  EnsureSodium();
  if (!s.key_base64.empty()) return {ParseKeys(s.key_base64, "CONNREG_MASTER_KEY"), ""};
  if (!s.key_file.empty()) return {ReadKeyFile(s.key_file), s.key_file};
  if (s.default_file.empty()) {
    throw std::runtime_error(
        "no master key: set CONNREG_MASTER_KEY (base64 of 32 bytes) or CONNREG_MASTER_KEY_FILE");
  }
  if (std::filesystem::exists(s.default_file)) return {ReadKeyFile(s.default_file), s.default_file};
  if (!s.store_is_empty) {
    throw std::runtime_error("master key file " + s.default_file +
                             " is missing, but the store already holds data sealed under a "
                             "master key: restore the file or set CONNREG_MASTER_KEY");
  }
  std::string raw(MasterKey::kBytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  Keyring ring{std::make_shared<const MasterKey>(raw), {}};
  sodium_memzero(raw.data(), raw.size());
  std::string text = ring.current->ExportBase64() + "\n";
  WritePrivateFile(s.default_file, text, /*overwrite=*/false);
  sodium_memzero(text.data(), text.size());
  return {std::move(ring), s.default_file};
}

}  // namespace connreg::crypto
