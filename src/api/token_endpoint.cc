// POST /v2/auth/token (contract section 2): OAuth 2.0 client credentials as Sigma serves them.
// The fields come as a form body or as a JSON object of the same fields. Errors carry both the
// OAuth fields (error, error_description) and Sigma's (code, message, requestId).
#include <boost/beast/http/field.hpp>

#include <map>
#include <string>

#include "api/api.h"
#include "api/json_body.h"
#include "auth/credentials.h"
#include "auth/tokens.h"

namespace connreg::api {
namespace {

namespace http_ = boost::beast::http;

void ReplyOAuthError(http::Exchange& ex, int status, std::string_view error,
                     std::string_view description) {
  std::string_view code = status == 401 ? "unauthorized" : "bad_request";
  ReplyJson(ex, status,
            {{"error", error},
             {"error_description", description},
             {"code", code},
             {"message", description},
             {"requestId", ex.request_id}});
  ex.response.set(http_::field::cache_control, "no-store");
}

bool IsFormContentType(const http::Request& req) {
  auto it = req.find(http_::field::content_type);
  if (it == req.end()) return false;
  std::string_view v = it->value();
  v = v.substr(0, v.find(';'));
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  static constexpr std::string_view kForm = "application/x-www-form-urlencoded";
  if (v.size() != kForm.size()) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != kForm[i]) return false;
  }
  return true;
}

// The request's fields: an application/json body (what a client generated from Sigma's OpenAPI
// document sends) is an object whose fields are strings (null: absent); otherwise the body is
// form-urlencoded (what Sigma's recipes and Terraform provider send) or empty.
Result<std::map<std::string, std::string>> RequestFields(const http::Request& req) {
  if (!IsJsonContentType(req)) {
    if (!req.body().empty() && !IsFormContentType(req)) {
      return Error::BadRequest(
          "the body must be application/x-www-form-urlencoded or application/json");
    }
    return auth::ParseForm(req.body());
  }
  auto body = ParseJsonBody(req);
  if (!body) return std::move(body).error();
  const auto* object = body->if_object();
  if (object == nullptr) return Error::BadRequest("the JSON body must be an object");
  std::map<std::string, std::string> fields;
  for (const auto& kv : *object) {
    if (kv.value().is_null()) continue;
    const auto* value = kv.value().if_string();
    if (value == nullptr) return Error::BadRequest(std::string(kv.key()) + " must be a string");
    fields.insert_or_assign(std::string(kv.key()), std::string(*value));
  }
  return fields;
}

}  // namespace

void HandleToken(Context& ctx) {
  http::Exchange& ex = ctx.ex;
  auto form = RequestFields(ex.request);
  if (!form) {
    ReplyOAuthError(ex, 400, "invalid_request", form.error().message);
    return;
  }
  auto field = [&](const char* name) -> const std::string* {
    auto it = form->find(name);
    return it == form->end() ? nullptr : &it->second;
  };

  // Client credentials: HTTP Basic or form fields; both at once must agree.
  std::optional<auth::BasicCredentials> creds;
  bool used_basic = false;
  if (auto h = ex.request.find(http_::field::authorization); h != ex.request.end()) {
    if (auth::IsBasicScheme(h->value())) {
      used_basic = true;
      creds = auth::ParseBasic(h->value());
      if (!creds) {
        ReplyOAuthError(ex, 400, "invalid_request", "the Basic credentials are malformed");
        return;
      }
    }
  }
  const std::string* form_id = field("client_id");
  const std::string* form_secret = field("client_secret");
  if (form_id || form_secret) {
    if (creds) {
      if (!form_id || *form_id != creds->id || (form_secret && *form_secret != creds->secret)) {
        ReplyOAuthError(ex, 400, "invalid_request",
                        "client credentials sent both as Basic and as form fields disagree");
        return;
      }
    } else {
      creds = auth::BasicCredentials{form_id ? *form_id : "", form_secret ? *form_secret : ""};
    }
  }

  const std::string* grant_type = field("grant_type");
  if (grant_type == nullptr || grant_type->empty()) {
    ReplyOAuthError(ex, 400, "invalid_request", "grant_type is required");
    return;
  }
  const bool refresh_grant = *grant_type == "refresh_token";
  if (*grant_type != "client_credentials" && !refresh_grant) {
    ReplyOAuthError(ex, 400, "unsupported_grant_type",
                    "grant_type must be client_credentials or refresh_token");
    return;
  }
  const std::string* presented_refresh = field("refresh_token");
  if (refresh_grant && (presented_refresh == nullptr || presented_refresh->empty())) {
    ReplyOAuthError(ex, 400, "invalid_request", "refresh_token is required");
    return;
  }

  // Client credentials are required for client_credentials, optional (checked when given) for
  // refresh_token.
  std::optional<store::ApiClient> client;
  if (creds || !refresh_grant) {
    if (!creds || creds->id.empty() || creds->secret.empty()) {
      ReplyOAuthError(ex, 401, "invalid_client",
                      "client_id and client_secret are required (form fields or HTTP Basic)");
      if (used_basic) ex.response.set(http_::field::www_authenticate, "Basic");
      return;
    }
    auto checked = auth::CheckClient(ctx.tokens, *creds);
    if (!checked) {
      if (checked.error().code != ErrorCode::kUnauthorized) return ReplyError(ex, checked.error());
      ReplyOAuthError(ex, 401, "invalid_client", checked.error().message);
      if (used_basic) ex.response.set(http_::field::www_authenticate, "Basic");
      return;
    }
    client = std::move(*checked);
  }

  const auth::TokenLifetimes lifetimes{ctx.options.access_token_ttl_secs,
                                       ctx.options.refresh_token_ttl_secs};
  auto issued = refresh_grant ? auth::RefreshTokens(ctx.tokens, *presented_refresh,
                                                    client ? client->client_id : std::string(),
                                                    lifetimes, NowMs())
                              : auth::IssueTokens(ctx.tokens, *client, lifetimes, NowMs());
  if (!issued && !refresh_grant) {
    // Revoked, or its member deactivated, since the client was checked.
    if (issued.error().code == ErrorCode::kNotFound) {
      return ReplyOAuthError(ex, 401, "invalid_client", "the client credentials are not valid");
    }
    return ReplyError(ex, issued.error());
  }
  if (!issued) {
    switch (issued.error().code) {
      case ErrorCode::kNotFound:
        return ReplyOAuthError(ex, 400, "invalid_grant",
                               "the refresh token is invalid, expired or revoked");
      case ErrorCode::kConflict:
        return ReplyOAuthError(ex, 400, "invalid_grant",
                               "the refresh token was already used; every token issued from "
                               "it has been revoked");
      default: return ReplyError(ex, issued.error());
    }
  }
  ex.member_id = issued->member_id;
  ReplyJson(ex, 200,
            {{"access_token", issued->access_token},
             {"refresh_token", issued->refresh_token},
             {"token_type", "bearer"},
             {"expires_in", ctx.options.access_token_ttl_secs}});
  ex.response.set(http_::field::cache_control, "no-store");
}

}  // namespace connreg::api
