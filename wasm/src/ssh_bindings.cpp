// The whole binding surface of the mana-ssh module: one embind class, `SshEngine`, over
// mana::ssh::SshEngine (libssh2 driven sans-I/O, see ssh_engine.hpp).
//
// Contract with js-glue (js-glue/src/internal/ssh-types.ts declares the raw surface by hand and
// js-glue/src/internal/ssh-engine.ts wraps it; keep all three in step):
//   * Time goes in as performance.now() milliseconds (double); nextTimeout() answers in the same.
//   * The per-chunk path carries numbers only (js_bytes.hpp): bytes go in through
//     inputBuffer(n) + one HEAPU8.set, then pushInput(n) / write(n); takeOutput(max) and a
//     `data` event give heap address + length in the Float64 scratch at fields(), valid until the
//     next takeOutput() / pollEvent(), and JS copies them out at once with one HEAPU8.slice.
//   * Outputs are pulled: takeOutput() and pollEvent() (a small integer kind, EventKind below);
//     rare events come out as EventKind::other and eventDetail() returns them as an object.
//     Nothing throws (no exceptions).
//   * Every instance must be released with delete(); liveEngines() counts the instances alive.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "js_bytes.hpp"
#include "ssh_engine.hpp"

namespace {

using emscripten::val;
namespace ssh = mana::ssh;

using mana::wasm::bytes_to_js;

std::string get_string(const val& o, const char* key) {
  const val v = o[key];
  return v.isString() ? v.as<std::string>() : std::string();
}

// A Uint8Array (or array of numbers) as bytes, at most `cap` of them; empty otherwise.
std::vector<std::uint8_t> get_bytes(const val& v, std::size_t cap) {
  if (!v.isArray() && !v.instanceof (val::global("Uint8Array"))) return {};
  if (v["length"].as<double>() > static_cast<double>(cap)) return {};
  return emscripten::convertJSArrayToNumberVector<std::uint8_t>(v);
}

std::size_t get_size(const val& o, const char* key, std::size_t fallback) {
  const val v = o[key];
  if (!v.isNumber()) return fallback;
  const double d = v.as<double>();
  return d > 0 && d < 1e12 ? static_cast<std::size_t>(d) : fallback;
}

// Keys: username, auth [{type, password | privateKey, passphrase | publicKey (security-key:
// the key blob, Uint8Array)}], hostkeyPref, kexPref,
// cipherPref, macPref, signPref, pty, termType, cols, rows, env [[name, value]], command,
// keepaliveS, outBound, inCap, appHighWater, writeCap, channelWindow (64 KiB .. 16 MiB),
// directHost + directPort (tunnel mode: a direct-tcpip channel instead of a session).
ssh::EngineConfig config_from_js(const val& o) {
  ssh::EngineConfig c;
  if (o.isUndefined() || o.isNull()) return c;
  c.username = get_string(o, "username");
  if (const val auth = o["auth"]; auth.isArray()) {
    const auto n = auth["length"].as<unsigned>();
    for (unsigned i = 0; i < n && i < 8; ++i) {
      const val a = auth[i];
      const std::string type = get_string(a, "type");
      ssh::AuthMethod m;
      if (type == "password") {
        m.kind = ssh::AuthKind::password;
        m.secret = get_string(a, "password");
      } else if (type == "publickey") {
        m.kind = ssh::AuthKind::publickey;
        m.secret = get_string(a, "privateKey");
        m.passphrase = get_string(a, "passphrase");
      } else if (type == "keyboard-interactive") {
        m.kind = ssh::AuthKind::keyboard_interactive;
      } else if (type == "security-key") {
        m.kind = ssh::AuthKind::security_key;
        const std::vector<std::uint8_t> blob = get_bytes(a["publicKey"], 4096);
        m.secret.assign(blob.begin(), blob.end());
      } else {
        continue;
      }
      c.auth.push_back(std::move(m));
    }
  }
  c.hostkey_pref = get_string(o, "hostkeyPref");
  c.kex_pref = get_string(o, "kexPref");
  c.cipher_pref = get_string(o, "cipherPref");
  c.mac_pref = get_string(o, "macPref");
  c.sign_pref = get_string(o, "signPref");
  c.pty = o["pty"].isTrue();
  if (const std::string t = get_string(o, "termType"); !t.empty()) c.term_type = t;
  c.cols = static_cast<std::uint32_t>(get_size(o, "cols", c.cols));
  c.rows = static_cast<std::uint32_t>(get_size(o, "rows", c.rows));
  if (const val env = o["env"]; env.isArray()) {
    const auto n = env["length"].as<unsigned>();
    for (unsigned i = 0; i < n && i < 64; ++i) {
      const val kv = env[i];
      if (!kv.isArray()) continue;
      const val k = kv[0];
      const val v = kv[1];
      if (k.isString() && v.isString())
        c.env.emplace_back(k.as<std::string>(), v.as<std::string>());
    }
  }
  c.command = get_string(o, "command");
  c.direct_host = get_string(o, "directHost");
  c.direct_port =
      static_cast<std::uint32_t>(std::min<std::size_t>(get_size(o, "directPort", 0), 65535));
  c.keepalive_s = static_cast<std::uint32_t>(get_size(o, "keepaliveS", 0));
  c.out_bound = get_size(o, "outBound", c.out_bound);
  c.in_cap = get_size(o, "inCap", c.in_cap);
  c.app_high_water = get_size(o, "appHighWater", c.app_high_water);
  c.write_cap = get_size(o, "writeCap", c.write_cap);
  c.channel_window = static_cast<std::uint32_t>(std::clamp<std::size_t>(
      get_size(o, "channelWindow", c.channel_window), 64 * 1024, 16 * 1024 * 1024));
  return c;
}

val typed(const char* type) {
  val o = val::object();
  o.set("type", std::string(type));
  return o;
}

// What pollEvent() returns. fields() holds for `data`: [0] stream (0 stdout, 1 stderr),
// [1] payload address, [2] payload length. `other`: eventDetail() gives the event as an object.
enum class EventKind : int { none = 0, data = 1, other = 2 };

// A rare event as a plain object with a `type` discriminator.
struct EventToJs {
  val operator()(const ssh::event::StateChanged& e) const {
    val o = typed("stateChanged");
    o.set("from", std::string(ssh::to_string(e.from)));
    o.set("to", std::string(ssh::to_string(e.to)));
    return o;
  }
  val operator()(const ssh::event::KexDone& e) const {
    val o = typed("kexDone");
    o.set("kex", e.kex);
    o.set("hostKey", e.hostkey);
    o.set("cipherClientToServer", e.cipher_cs);
    o.set("cipherServerToClient", e.cipher_sc);
    o.set("macClientToServer", e.mac_cs);
    o.set("macServerToClient", e.mac_sc);
    return o;
  }
  val operator()(const ssh::event::HostKey& e) const {
    val o = typed("hostKey");
    o.set("keyType", e.key_type);
    o.set("algorithm", e.algorithm);
    o.set("fingerprint", e.fingerprint);
    o.set("blob", bytes_to_js(reinterpret_cast<const std::uint8_t*>(e.blob.data()), e.blob.size()));
    return o;
  }
  val operator()(const ssh::event::AuthMethods& e) const {
    val o = typed("authMethods");
    o.set("methods", e.methods);
    return o;
  }
  val operator()(const ssh::event::AuthResult& e) const {
    val o = typed("authResult");
    o.set("method", e.method);
    o.set("ok", e.ok);
    o.set("code", e.code);
    o.set("message", e.message);
    return o;
  }
  val operator()(const ssh::event::KbdPrompts& e) const {
    val o = typed("kbdPrompts");
    o.set("name", e.name);
    o.set("instruction", e.instruction);
    val prompts = val::array();
    for (const auto& p : e.prompts) {
      val q = val::object();
      q.set("prompt", p.text);
      q.set("echo", p.echo);
      prompts.call<void>("push", q);
    }
    o.set("prompts", prompts);
    return o;
  }
  val operator()(const ssh::event::SignRequest& e) const {
    val o = typed("signRequest");
    o.set("data", bytes_to_js(e.data.data(), e.data.size()));
    return o;
  }
  val operator()(const ssh::event::Ready& /*e*/) const { return typed("ready"); }
  // Data goes through fields(), never as an object.
  val operator()(const ssh::event::Data& /*e*/) const { return val::null(); }
  val operator()(const ssh::event::Exit& e) const {
    val o = typed("exit");
    o.set("code", e.code ? val(*e.code) : val::null());
    o.set("signal", e.signal.empty() ? val::null() : val(e.signal));
    o.set("message", e.message);
    return o;
  }
  val operator()(const ssh::event::Diagnostic& e) const {
    val o = typed("diagnostic");
    o.set("code", e.code);
    o.set("detail", e.detail);
    return o;
  }
  val operator()(const ssh::event::Closed& e) const {
    val o = typed("closed");
    o.set("reason", std::string(ssh::to_string(e.kind)));
    o.set("code", e.code);
    o.set("message", e.message);
    o.set("methods", e.methods);
    o.set("mismatch", e.mismatch);
    o.set("clientOffer", e.client_offer);
    o.set("serverOffer", e.server_offer);
    return o;
  }
};

class WasmSshEngine {
 public:
  explicit WasmSshEngine(const val& config)
      : engine_(std::make_unique<ssh::SshEngine>(config_from_js(config))) {}

  std::string state() const { return ssh::to_string(engine_->state()); }

  // Heap address of an n-byte input buffer for the next pushInput() / write().
  double input_buffer(double n) { return mana::wasm::input_buffer(scratch_in_, n); }

  // Heap address of the Float64 fields of the last takeOutput() / pollEvent().
  double fields() const { return mana::wasm::heap_address(fields_.data()); }

  bool push_input(double n) { return engine_->push_input(scratch_in_.data(), input_size(n)); }
  double take_input_consumed() { return static_cast<double>(engine_->take_input_consumed()); }
  void transport_closed() { engine_->transport_closed(); }
  double output_bytes() const { return static_cast<double>(engine_->output_bytes()); }
  // Moves up to max output bytes into the output buffer: fields() [0] address, [1] length.
  double take_output(double max) {
    const std::size_t want = mana::wasm::clamp_size(max, engine_->output_bytes());
    scratch_.resize(want);
    const std::size_t n = engine_->take_output(scratch_.data(), want);
    fields_[0] = mana::wasm::heap_address(scratch_.data());
    fields_[1] = static_cast<double>(n);
    return static_cast<double>(n);
  }
  double bytes_sent() const { return static_cast<double>(engine_->bytes_sent()); }
  double bytes_received() const { return static_cast<double>(engine_->bytes_received()); }

  void step(double now) { engine_->step(now); }
  val next_timeout() const {
    const auto t = engine_->next_timeout();
    return t ? val(*t) : val::null();
  }
  int poll_event() {
    event_ = engine_->poll_event();
    if (!event_) return static_cast<int>(EventKind::none);
    if (const auto* d = std::get_if<ssh::event::Data>(&*event_)) {
      fields_[0] = d->stream == 1 ? 1 : 0;
      fields_[1] = mana::wasm::heap_address(d->bytes.data());
      fields_[2] = static_cast<double>(d->bytes.size());
      return static_cast<int>(EventKind::data);
    }
    return static_cast<int>(EventKind::other);
  }

  // The last pollEvent() as an object when it was EventKind::other, else null.
  val event_detail() const {
    if (!event_ || std::holds_alternative<ssh::event::Data>(*event_)) return val::null();
    return std::visit(EventToJs{}, *event_);
  }

  void host_key_decision(bool accept) { engine_->host_key_decision(accept); }
  void kbd_answers(const val& answers) {
    if (!answers.isArray()) {
      engine_->kbd_answers(std::nullopt);
      return;
    }
    std::vector<std::string> out;
    const auto n = answers["length"].as<unsigned>();
    for (unsigned i = 0; i < n && i < 64; ++i) {
      const val a = answers[i];
      out.push_back(a.isString() ? a.as<std::string>() : std::string());
    }
    engine_->kbd_answers(std::move(out));
  }
  // The signature blob (Uint8Array) for the last signRequest; null cancels.
  void sign_result(const val& signature) {
    if (signature.isNull() || signature.isUndefined()) {
      engine_->sign_result(std::nullopt);
      return;
    }
    engine_->sign_result(get_bytes(signature, 64 * 1024));
  }
  double write(double n) {
    return static_cast<double>(engine_->write(scratch_in_.data(), input_size(n)));
  }
  double write_room() const { return static_cast<double>(engine_->write_room()); }
  double write_queued() const { return static_cast<double>(engine_->write_queued()); }
  void consume(double n) { engine_->consume(n > 0 ? static_cast<std::size_t>(n) : 0U); }
  double unconsumed() const { return static_cast<double>(engine_->unconsumed()); }
  void resize(double cols, double rows) {
    if (!(cols > 0 && rows > 0 && cols <= 10000 && rows <= 10000)) return;
    engine_->resize(static_cast<std::uint32_t>(cols), static_cast<std::uint32_t>(rows));
  }
  bool signal(const std::string& name) { return engine_->signal(name); }
  void send_eof() { engine_->send_eof(); }
  void close() { engine_->close(); }

 private:
  // n from JS as a byte count of the input buffer (at most its size).
  std::size_t input_size(double n) const { return mana::wasm::clamp_size(n, scratch_in_.size()); }

  std::unique_ptr<ssh::SshEngine> engine_;
  std::vector<std::uint8_t> scratch_;     // takeOutput() payload, reused
  std::vector<std::uint8_t> scratch_in_;  // pushInput() / write() input, reused
  std::optional<ssh::Event> event_;       // the last pollEvent(), owns its payload
  std::array<double, 3> fields_{};        // see take_output() / EventKind
};

int live_engine_count() {
  return ssh::live_engines();
}

// kex | hostkey | cipher | mac -> the names this build supports, comma separated.
std::string supported_algorithms(const std::string& kind) {
  return ssh::supported_algorithms(kind);
}

}  // namespace

// libssh2 references recv()/send(), which would pull Emscripten's socket emulation (and a
// require("ws")) into the JS glue. The engine always installs its own callbacks, so these are
// never called; they fail like a socket that is not connected.
extern "C" ssize_t recv(int /*fd*/, void* /*buf*/, size_t /*len*/, int /*flags*/) {
  errno = ENOTCONN;
  return -1;
}
extern "C" ssize_t send(int /*fd*/, const void* /*buf*/, size_t /*len*/, int /*flags*/) {
  errno = ENOTCONN;
  return -1;
}

EMSCRIPTEN_BINDINGS(mana_ssh) {
  emscripten::class_<WasmSshEngine>("SshEngine")
      .constructor<const val&>()
      .function("state", &WasmSshEngine::state)
      .function("inputBuffer", &WasmSshEngine::input_buffer)
      .function("fields", &WasmSshEngine::fields)
      .function("pushInput", &WasmSshEngine::push_input)
      .function("takeInputConsumed", &WasmSshEngine::take_input_consumed)
      .function("transportClosed", &WasmSshEngine::transport_closed)
      .function("outputBytes", &WasmSshEngine::output_bytes)
      .function("takeOutput", &WasmSshEngine::take_output)
      .function("bytesSent", &WasmSshEngine::bytes_sent)
      .function("bytesReceived", &WasmSshEngine::bytes_received)
      .function("step", &WasmSshEngine::step)
      .function("nextTimeout", &WasmSshEngine::next_timeout)
      .function("pollEvent", &WasmSshEngine::poll_event)
      .function("eventDetail", &WasmSshEngine::event_detail)
      .function("hostKeyDecision", &WasmSshEngine::host_key_decision)
      .function("kbdAnswers", &WasmSshEngine::kbd_answers)
      .function("signResult", &WasmSshEngine::sign_result)
      .function("write", &WasmSshEngine::write)
      .function("writeRoom", &WasmSshEngine::write_room)
      .function("writeQueued", &WasmSshEngine::write_queued)
      .function("consume", &WasmSshEngine::consume)
      .function("unconsumed", &WasmSshEngine::unconsumed)
      .function("resize", &WasmSshEngine::resize)
      .function("signal", &WasmSshEngine::signal)
      .function("sendEof", &WasmSshEngine::send_eof)
      .function("close", &WasmSshEngine::close);
  emscripten::function("liveEngines", &live_engine_count);
  emscripten::function("supportedAlgorithms", &supported_algorithms);
}
