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
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.erase(text.begin());
  }
  auto raw = Base64Decode(text);
  if (!raw) {
    sodium_memzero(text.data(), text.size());
    throw std::runtime_error(where + " is not valid base64");
  }
  sodium_memzero(text.data(), text.size());
  if (raw->size() != MasterKey::kBytes) {
    sodium_memzero(raw->data(), raw->size());
    throw std::runtime_error(where + " must decode to 32 bytes (a 256-bit key), not " +
                             std::to_string(raw->size()));
  }
  auto key = std::make_shared<const MasterKey>(*raw);
  sodium_memzero(raw->data(), raw->size());
  return key;
}

std::shared_ptr<const MasterKey> FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read master key file " + path + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return FromBase64(std::move(text), "master key file " + path);
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

std::shared_ptr<const MasterKey> LoadMasterKey(const MasterKeySettings& s) {
  EnsureSodium();
  if (!s.key_base64.empty()) return FromBase64(s.key_base64, "CONNREG_MASTER_KEY");
  if (!s.key_file.empty()) return FromFile(s.key_file);
  if (s.default_file.empty()) {
    throw std::runtime_error(
        "no master key: set CONNREG_MASTER_KEY (base64 of 32 bytes) or CONNREG_MASTER_KEY_FILE");
  }
  if (std::filesystem::exists(s.default_file)) return FromFile(s.default_file);
  if (!s.store_is_empty) {
    throw std::runtime_error("master key file " + s.default_file +
                             " is missing, but the store already holds data sealed under a "
                             "master key: restore the file or set CONNREG_MASTER_KEY");
  }
  std::string raw(MasterKey::kBytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string text = Base64Encode(raw) + "\n";
  WritePrivateFile(s.default_file, text, /*overwrite=*/false);
  sodium_memzero(text.data(), text.size());
  auto key = std::make_shared<const MasterKey>(raw);
  sodium_memzero(raw.data(), raw.size());
  return key;
}

}  // namespace connreg::crypto
