// Passkeys (WebAuthn) for the Authz pages: ask the server for options, call the browser's
// credential API, and submit the answer in an ordinary form POST. Served from /static under
// the pages' CSP (default-src 'self'); the pages work without it (password sign-in).
"use strict";

(function () {
  function toBytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toText(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  // The sign-in page's own form carries the CSRF token and where the sign-in continues: the
  // passkey form takes those over (one copy of each field on the page).
  function borrow(form) {
    const main = document.querySelector("form[action='/login'], form[action='/login/code']");
    if (!main || main === form) return;
    for (const el of main.querySelectorAll("input[type=hidden]")) {
      if (!form.querySelector("input[name='" + el.name + "']")) {
        const copy = document.createElement("input");
        copy.type = "hidden";
        copy.name = el.name;
        copy.value = el.value;
        form.appendChild(copy);
      }
    }
    const user = main.querySelector("input[name=username]");
    if (user && user.value && !form.querySelector("input[name=username]")) {
      const copy = document.createElement("input");
      copy.type = "hidden";
      copy.name = "username";
      copy.value = user.value;
      form.appendChild(copy);
    }
  }
  function fields(form) {
    borrow(form);
    const data = new URLSearchParams();
    for (const el of form.querySelectorAll("input[type=hidden], input[name=name]")) {
      if (el.name) data.append(el.name, el.value);
    }
    return data;
  }
  async function options(url, form) {
    const r = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: fields(form),
      credentials: "same-origin",
    });
    const body = await r.json();
    // The server wants a fresh sign-in first: go there (it comes back to this page).
    if (body.reauth && body.reauth.startsWith("/account/login?")) {
      window.location.assign(body.reauth);
      return new Promise(function () {});
    }
    if (!r.ok) throw new Error(body.error || "the server refused");
    return body;
  }
  function show(form, message) {
    const out = form.querySelector(".passkey-error");
    if (out) { out.textContent = message; out.hidden = false; }
  }
  function submit(form, values) {
    for (const [name, value] of Object.entries(values)) {
      let input = form.querySelector("input[name=" + name + "]");
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        form.appendChild(input);
      }
      input.value = value;
    }
    form.submit();
  }

  async function register(form) {
    const { ceremony, options: o } = await options("/account/passkeys/options", form);
    const pk = o.publicKey;
    pk.challenge = toBytes(pk.challenge);
    pk.user.id = toBytes(pk.user.id);
    for (const c of pk.excludeCredentials || []) c.id = toBytes(c.id);
    const cred = await navigator.credentials.create({ publicKey: pk });
    const credential = {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults(),
      response: {
        attestationObject: toText(cred.response.attestationObject),
        clientDataJSON: toText(cred.response.clientDataJSON),
      },
    };
    submit(form, { ceremony, credential: JSON.stringify(credential) });
  }

  async function signIn(form) {
    const { ceremony, mode, options: o } = await options("/login/passkey/options", form);
    const pk = o.publicKey;
    pk.challenge = toBytes(pk.challenge);
    for (const c of pk.allowCredentials || []) c.id = toBytes(c.id);
    const cred = await navigator.credentials.get({ publicKey: pk, mediation: o.mediation });
    const r = cred.response;
    const credential = {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults(),
      response: {
        authenticatorData: toText(r.authenticatorData),
        clientDataJSON: toText(r.clientDataJSON),
        signature: toText(r.signature),
        userHandle: r.userHandle ? toText(r.userHandle) : null,
      },
    };
    submit(form, { ceremony, mode, credential: JSON.stringify(credential) });
  }

  function wire(selector, action) {
    for (const form of document.querySelectorAll(selector)) {
      if (!window.PublicKeyCredential) continue;
      form.hidden = false;
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        action(form).catch(function (e) { show(form, "Passkey: " + e.message); });
      });
    }
  }
  wire("form.passkey-register", register);
  wire("form.passkey-signin", signIn);
})();
