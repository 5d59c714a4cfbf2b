// @ts-check
/**
 * The DataFold key manager page (index.html): a thin user interface over
 * datafold-auth.js. Everything cryptographic happens in that module.
 */
import * as df from "./datafold-auth.js";

const MIN_PASSPHRASE = 12;

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element;
}
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id));

/** Human sentences for reasons the page shows (docs/troubleshooting.md has the server's). */
const HINTS = /** @type {Record<string, string>} */ ({
  wrong_passphrase: "The passphrase does not open it. Check the keyboard layout and caps lock.",
  digest_mismatch: "The body is not the one that was signed.",
  bad_signature: "The signature does not match the request the server received (method, host, path or query differ).",
  replayed_nonce: "This exact signed request was already used; every request must be signed again.",
  unknown_key: "The server does not know this key: register it first.",
  key_not_active: "The server has this key, but it is not active (pending approval, revoked or expired).",
  missing_signature: "The request was not signed.",
  expired: "The signature is too old, or this computer's clock is wrong.",
  created_in_future: "This computer's clock is ahead of the server's.",
  duplicate_key: "The server already has this key.",
  client_id_taken: "Another key already uses this client id; choose another.",
  key_locked: "Unlock the key with its passphrase first.",
  not_extractable: "Non-extractable keys cannot be copied or backed up after they were made.",
  unsupported_backup: "This page cannot read that backup; keytools can.",
});

/** @param {unknown} error */
function describe(error) {
  if (error instanceof df.DatafoldAuthError) {
    const hint = HINTS[error.reason];
    return `${error.message}${hint && !error.message.includes(hint) ? " " + hint : ""} (${error.reason})`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** @param {unknown} error */
function showError(error) {
  const box = $("error");
  box.textContent = describe(error);
  box.hidden = false;
}

function clearError() {
  const box = $("error");
  box.hidden = true;
  box.textContent = "";
}

/**
 * @param {string} id
 * @param {string} text
 * @param {"ok" | "error" | "busy" | ""} [kind]
 */
function setStatus(id, text, kind = "") {
  const element = $(id);
  element.textContent = text;
  element.className = `status${kind ? " status-" + kind : ""}`;
}

/** @param {number | null | undefined} seconds */
function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

/**
 * Run a form action with the page's busy/error handling.
 * @param {HTMLElement} form the form (or key card) whose buttons are disabled meanwhile
 * @param {string} statusId
 * @param {() => Promise<void>} action
 */
async function run(form, statusId, action) {
  clearError();
  const buttons = Array.from(form.querySelectorAll("button"));
  buttons.forEach((b) => (b.disabled = true));
  form.setAttribute("aria-busy", "true");
  try {
    await action();
  } catch (error) {
    setStatus(statusId, describe(error), "error");
    showError(error);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    form.removeAttribute("aria-busy");
  }
}

/**
 * @param {string} first
 * @param {string} second
 * @param {string} what
 */
function checkNewPassphrase(first, second, what) {
  if (first.length < MIN_PASSPHRASE) throw new df.DatafoldAuthError("weak_passphrase", `The ${what} needs at least ${MIN_PASSPHRASE} characters.`);
  if (first !== second) throw new df.DatafoldAuthError("passphrase_mismatch", `The two ${what}s differ.`);
}

/** @param {File | undefined | null} file */
async function fileBytes(file) {
  return file ? new Uint8Array(await file.arrayBuffer()) : null;
}

// ------------------------------------------------------------------ state

/** @type {df.KeyStore} */
let store;
/** The backup just written, kept in memory only until it is confirmed or the page closes. @type {df.Backup | null} */
let pendingBackup = null;
/** @type {string | null} */
let downloadUrl = null;

function registrationUrl() {
  return input("registration-url").value.trim() || new URL("/register/keys", location.href).href;
}

// ------------------------------------------------------------------ the key list

/**
 * @param {df.KeyInfo} key
 * @returns {[string, string, string][]} [class, text, description]
 */
function badges(key) {
  /** @type {[string, string, string][]} */
  const out = [];
  const reg = key.registration;
  if (!reg) out.push(["badge-neutral", "Not registered", "The server does not know this key yet."]);
  else if (reg.status === "active") out.push(["badge-ok", "Registered: active", `Checked ${when(reg.checkedAt)}.`]);
  else if (reg.status === "not_found") out.push(["badge-bad", "Not found on the server", `Checked ${when(reg.checkedAt)}.`]);
  else if (reg.status === "pending") out.push(["badge-warn", "Registered: pending", "Waiting for an operator to approve it."]);
  else if (reg.status === "rotating") out.push(["badge-warn", "Rotation unconfirmed", "Check its status: active means the rotation happened."]);
  else out.push([reg.status === "rotated" || reg.status === "suspended" ? "badge-warn" : "badge-bad", `Registered: ${reg.status}`, df.describeStatus(reg.status).text]);
  if (key.protection === "non-extractable") {
    out.push(["badge-ok", "Non-extractable", "The browser signs with it but never hands it out."]);
  } else {
    out.push([key.locked ? "badge-neutral" : "badge-ok", key.locked ? "Passphrase-encrypted: locked" : "Passphrase-encrypted: unlocked", "Encrypted at rest; unlocked copies live in memory for this visit only."]);
  }
  if (key.backup && key.backup.confirmedAt) {
    out.push(["badge-ok", `Backed up (${key.backup.format.toUpperCase()})`, `Confirmed ${when(key.backup.confirmedAt)}.`]);
  } else if (key.backup) {
    out.push(["badge-warn", "Backup not confirmed", "A backup was written; confirm that it opens."]);
  } else {
    const later = key.protection === "passphrase" ? "Back it up now." : "It cannot be backed up any more: losing this browser's data loses the key.";
    out.push(["badge-bad", "Not backed up", later]);
  }
  return out;
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attributes = {}, children = []) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") element.textContent = value;
    else element.setAttribute(name, value);
  }
  element.append(...children);
  return element;
}

/**
 * Re-render the key list; keep keyboard focus on the key card that was being used.
 * @param {{keyid: string, action?: string}} [focus]
 */
async function renderKeys(focus) {
  const keys = await store.list();
  const list = $("key-list");
  list.replaceChildren();
  $("keys-empty").hidden = keys.length > 0;
  const select = /** @type {HTMLSelectElement} */ ($("request-key"));
  const previous = select.value;
  select.replaceChildren();
  for (const key of keys) {
    const name = key.label || "(no label)";
    select.append(el("option", { value: key.keyid, text: `${name} — ${key.keyid.slice(0, 10)}…` }));
    list.append(renderKey(key));
  }
  if (keys.some((k) => k.keyid === previous)) select.value = previous;
  if (focus) {
    const item = list.querySelector(`li.key[data-keyid="${CSS.escape(focus.keyid)}"]`);
    const target = item && (item.querySelector(`button[data-action="${focus.action ?? ""}"]`) ?? item.querySelector("button[data-action]"));
    if (target) /** @type {HTMLElement} */ (target).focus();
  }
}

/** @param {df.KeyInfo} key */
function renderKey(key) {
  const headingId = `key-${key.keyid}-heading`;
  const statusId = `key-${key.keyid}-status`;
  const item = el("li", { class: "key", "data-keyid": key.keyid, "aria-labelledby": headingId });
  item.append(el("h3", { id: headingId, text: key.label || "(no label)" }));
  const facts = el("dl", { class: "facts" });
  facts.append(el("dt", { text: "Keyid" }), el("dd", {}, [el("code", { class: "keyid", text: key.keyid })]));
  facts.append(el("dt", { text: "Fingerprint" }), el("dd", {}, [el("code", { class: "fingerprint", text: df.fingerprint(key.keyid) })]));
  facts.append(el("dt", { text: "Client id" }), el("dd", { text: key.registration?.clientId || key.clientId || "(the keyid)" }));
  facts.append(el("dt", { text: "Created" }), el("dd", { text: when(key.created) }));
  item.append(facts);
  const badgeList = el("ul", { class: "badges", "aria-label": "Status and security" });
  for (const [kind, text, detail] of badges(key)) {
    badgeList.append(el("li", { class: `badge ${kind}`, title: detail }, [el("span", { class: "badge-text", text }), el("span", { class: "visually-hidden", text: `: ${detail}` })]));
  }
  item.append(badgeList);

  const actions = el("div", { class: "actions", role: "group", "aria-label": `Actions for ${key.label || key.keyid}` });
  /** @param {string} action @param {string} text */
  const button = (action, text) => el("button", { type: "button", "data-action": action, text });
  if (key.protection === "passphrase" && key.locked) actions.append(button("unlock", "Unlock"));
  actions.append(button("use", "Use for requests"), button("register", "Register"));
  if (key.registration) actions.append(button("status", "Check status"));
  if (key.protection === "passphrase") actions.append(button("backup", "Back up"));
  if (key.backup && !key.backup.confirmedAt) actions.append(button("confirm", "Confirm backup"));
  actions.append(button("delete", "Delete"));
  item.append(actions, el("div", { class: "panel", hidden: "" }), el("p", { id: statusId, class: "status", role: "status", "aria-live": "polite" }));
  return item;
}

/**
 * Show a small inline form in a key's panel.
 * @param {HTMLElement} item
 * @param {{legend: string, fields: [string, string, string][], submit: string, warning?: string}} spec fields: [id, label, type]
 * @param {(values: Record<string, string>, form: HTMLFormElement) => Promise<void>} onSubmit
 */
function openPanel(item, spec, onSubmit) {
  const panel = /** @type {HTMLElement} */ (item.querySelector(".panel"));
  const keyid = item.dataset.keyid ?? "";
  const form = /** @type {HTMLFormElement} */ (el("form", { novalidate: "" }));
  const fieldset = el("fieldset", {}, [el("legend", { text: spec.legend })]);
  if (spec.warning) fieldset.append(el("p", { class: "message message-warning", text: spec.warning }));
  for (const [name, label, type] of spec.fields) {
    const id = `panel-${keyid}-${name}`;
    const control = type === "select-format"
      ? el("select", { id, name }, [el("option", { value: "pem", text: "PEM" }), el("option", { value: "json", text: "JSON" })])
      : el("input", { id, name, type, autocomplete: type === "password" ? "off" : "on" });
    fieldset.append(el("div", { class: "field" }, [el("label", { for: id, text: label }), control]));
  }
  const cancel = el("button", { type: "button", text: "Cancel" });
  fieldset.append(el("div", { class: "actions" }, [el("button", { type: "submit", text: spec.submit }), cancel]));
  form.append(fieldset);
  panel.replaceChildren(form);
  panel.hidden = false;
  cancel.addEventListener("click", () => {
    panel.hidden = true;
    panel.replaceChildren();
    /** @type {HTMLElement | null} */ (item.querySelector("button[data-action]"))?.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(Array.from(new FormData(form), ([k, v]) => [k, String(v)]));
    run(form, `key-${keyid}-status`, () => onSubmit(values, form));
  });
  /** @type {HTMLElement | null} */ (form.querySelector("input, select, button"))?.focus();
}

/**
 * @param {HTMLElement} item
 * @param {string} action
 */
async function keyAction(item, action) {
  const keyid = item.dataset.keyid ?? "";
  const statusId = `key-${keyid}-status`;
  switch (action) {
    case "use": {
      /** @type {HTMLSelectElement} */ ($("request-key")).value = keyid;
      setStatus(statusId, "Selected for signed requests.", "ok");
      $("request-url").focus();
      return;
    }
    case "unlock":
      openPanel(item, { legend: "Unlock with the storage passphrase", fields: [["passphrase", "Storage passphrase", "password"]], submit: "Unlock" }, async (values) => {
        setStatus(statusId, "Unlocking…", "busy");
        await store.unlock(keyid, values.passphrase);
        await renderKeys({ keyid, action: "use" });
        setStatus(`key-${keyid}-status`, "Unlocked for this visit.", "ok");
      });
      return;
    case "register":
      await run(item, statusId, async () => {
        setStatus(statusId, "Registering…", "busy");
        const { record } = await store.register(keyid, registrationUrl());
        await renderKeys({ keyid, action: "register" });
        setStatus(`key-${keyid}-status`, `Registered as ${record.client_id}: ${record.status}.`, "ok");
      });
      return;
    case "status":
      await run(item, statusId, async () => {
        const key = await store.refreshStatus(keyid);
        await renderKeys({ keyid, action: "status" });
        setStatus(`key-${keyid}-status`, `Server status: ${key.registration?.status}.`, "ok");
      });
      return;
    case "backup":
      openPanel(
        item,
        {
          legend: "Write an encrypted backup",
          warning: "Keep the file and its passphrase apart. Losing both this browser's copy and the backup (or its passphrase) loses the key.",
          fields: [
            ["passphrase", "Storage passphrase (unlocks the key)", "password"],
            ["backup", "Backup passphrase", "password"],
            ["backup2", "Backup passphrase again", "password"],
            ["format", "Format", "select-format"],
          ],
          submit: "Write backup",
        },
        async (values) => {
          checkNewPassphrase(values.backup, values.backup2, "backup passphrase");
          setStatus(statusId, "Writing the backup…", "busy");
          const backup = await store.exportBackup(keyid, values.passphrase, values.backup, { format: /** @type {"pem" | "json"} */ (values.format) });
          await renderKeys();
          offerBackup(backup);
        },
      );
      return;
    case "confirm":
      if (pendingBackup && pendingBackup.keyid === keyid) offerBackup(pendingBackup);
      else offerBackup({ format: "pem", data: "", keyid, filename: "", mimeType: "" });
      return;
    case "delete":
      openPanel(
        item,
        {
          legend: "Delete this key from this browser",
          warning: "This cannot be undone. Without a backup the key is gone for good; the server keeps its public key until an operator revokes it.",
          fields: [["confirm", "Type DELETE to confirm", "text"]],
          submit: "Delete for good",
        },
        async (values) => {
          if (values.confirm !== "DELETE") throw new df.DatafoldAuthError("not_confirmed", "Type DELETE (capital letters) to confirm.");
          await store.delete(keyid);
          await renderKeys();
          setStatus("create-status", "The key was deleted from this browser.", "ok");
          $("keys-heading").focus();
        },
      );
      return;
    default:
  }
}

// ------------------------------------------------------------------ backups

/** @param {df.Backup} backup */
function offerBackup(backup) {
  pendingBackup = backup.data ? backup : pendingBackup;
  const section = $("backup-section");
  section.hidden = false;
  $("backup-keyid").textContent = backup.keyid;
  $("backup-format").textContent = backup.format.toUpperCase();
  const link = /** @type {HTMLAnchorElement} */ ($("backup-download"));
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = null;
  if (backup.data) {
    downloadUrl = URL.createObjectURL(new Blob([backup.data], { type: backup.mimeType }));
    link.href = downloadUrl;
    link.download = backup.filename;
    link.hidden = false;
  } else {
    link.hidden = true;
  }
  section.dataset.keyid = backup.keyid;
  setStatus("confirm-status", "");
  $("backup-heading").focus();
}

// ------------------------------------------------------------------ forms

function wireProtectionToggle(/** @type {string} */ name, /** @type {string} */ fieldsId) {
  for (const radio of document.querySelectorAll(`input[name="${name}"]`)) {
    radio.addEventListener("change", () => {
      const passphrase = /** @type {HTMLInputElement} */ (document.querySelector(`input[name="${name}"]:checked`)).value === "passphrase";
      $(fieldsId).hidden = !passphrase;
    });
  }
}

function wireCreate() {
  wireProtectionToggle("protection", "create-storage-fields");
  const backupBox = input("create-backup");
  backupBox.addEventListener("change", () => {
    $("create-backup-fields").hidden = !backupBox.checked;
  });
  const form = /** @type {HTMLFormElement} */ ($("create-form"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, "create-status", async () => {
      const label = input("create-label").value.trim();
      const clientId = input("create-client").value.trim() || null;
      if (clientId && !/^[A-Za-z0-9._@:-]{1,128}$/.test(clientId)) {
        throw new df.DatafoldAuthError("invalid_request", "The client id may use letters, digits and . _ @ : - (at most 128).");
      }
      const protection = /** @type {"non-extractable" | "passphrase"} */ (/** @type {HTMLInputElement} */ (form.querySelector('input[name="protection"]:checked')).value);
      /** @type {df.CreateOptions} */
      const options = { label, clientId, protection };
      if (protection === "passphrase") {
        checkNewPassphrase(input("create-storage-pass").value, input("create-storage-pass2").value, "storage passphrase");
        options.passphrase = input("create-storage-pass").value;
      }
      setStatus("create-status", "Creating the key…", "busy");
      const started = performance.now();
      let key;
      if (backupBox.checked) {
        const backupPassphrase = input("create-backup-pass").value;
        checkNewPassphrase(backupPassphrase, input("create-backup-pass2").value, "backup passphrase");
        const format = /** @type {"pem" | "json"} */ (/** @type {HTMLSelectElement} */ ($("create-backup-format")).value);
        const made = await store.createWithBackup({ ...options, backupPassphrase, format });
        key = made.key;
        offerBackup(made.backup);
      } else {
        key = await store.create(options);
      }
      for (const id of ["create-storage-pass", "create-storage-pass2", "create-backup-pass", "create-backup-pass2"]) input(id).value = "";
      store.persist().catch(() => false);
      await renderKeys();
      /** @type {HTMLSelectElement} */ ($("request-key")).value = key.keyid;
      setStatus("create-status", `Created key ${key.keyid} in ${Math.round(performance.now() - started)} ms.`, "ok");
    });
  });
}

function wireConfirm() {
  const form = /** @type {HTMLFormElement} */ ($("confirm-form"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, "confirm-status", async () => {
      const keyid = $("backup-section").dataset.keyid ?? "";
      const file = /** @type {HTMLInputElement} */ ($("confirm-file")).files?.[0];
      const data = (await fileBytes(file)) ?? (pendingBackup && pendingBackup.keyid === keyid ? pendingBackup.data : null);
      if (!data) throw new df.DatafoldAuthError("invalid_request", "Choose the backup file you saved.");
      setStatus("confirm-status", "Opening the backup…", "busy");
      await store.confirmBackup(keyid, data, input("confirm-pass").value);
      input("confirm-pass").value = "";
      pendingBackup = null;
      await renderKeys();
      setStatus("confirm-status", `Confirmed: the backup${file ? ` ${file.name}` : ""} opens and holds key ${keyid}.`, "ok");
    });
  });
}

function wireRestore() {
  wireProtectionToggle("restore-protection", "restore-storage-fields");
  const form = /** @type {HTMLFormElement} */ ($("restore-form"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, "restore-status", async () => {
      const file = /** @type {HTMLInputElement} */ ($("restore-file")).files?.[0];
      const data = (await fileBytes(file)) ?? /** @type {HTMLTextAreaElement} */ ($("restore-text")).value.trim();
      if (!data || (typeof data === "string" && !data)) throw new df.DatafoldAuthError("invalid_request", "Choose a backup file or paste one.");
      const kind = df.identifyBackup(data);
      if (!kind.supported) throw new df.DatafoldAuthError("unsupported_backup", `This is ${kind.description}.`);
      const protection = /** @type {"non-extractable" | "passphrase"} */ (/** @type {HTMLInputElement} */ (form.querySelector('input[name="restore-protection"]:checked')).value);
      if (protection === "passphrase" && input("restore-storage-pass").value.length < MIN_PASSPHRASE) {
        throw new df.DatafoldAuthError("weak_passphrase", `The storage passphrase needs at least ${MIN_PASSPHRASE} characters.`);
      }
      setStatus("restore-status", `Opening the ${kind.description}…`, "busy");
      const { key, restored } = await store.restore(data, input("restore-pass").value, {
        label: input("restore-label").value.trim() || undefined,
        protection,
        passphrase: protection === "passphrase" ? input("restore-storage-pass").value : undefined,
      });
      input("restore-pass").value = "";
      input("restore-storage-pass").value = "";
      store.persist().catch(() => false);
      /** @type {HTMLTextAreaElement} */ ($("restore-text")).value = "";
      /** @type {HTMLInputElement} */ ($("restore-file")).value = "";
      let server = "";
      try {
        const record = await df.fetchKeyRecord(registrationUrl(), key.keyid);
        if (record) {
          await store.update(key.keyid, { registration: { url: registrationUrl(), status: record.status, clientId: record.client_id, checkedAt: Math.floor(Date.now() / 1000) } });
          server = ` The server knows it: ${record.status}.`;
        }
      } catch {
        server = " (The server could not be asked for its status.)";
      }
      await renderKeys();
      setStatus("restore-status", `Restored and verified key ${key.keyid} from ${restored.description}: it signs, and its keyid matches.${server}`, "ok");
    });
  });
}

function wireRequest() {
  const form = /** @type {HTMLFormElement} */ ($("request-form"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, "response-status", async () => {
      const keyid = /** @type {HTMLSelectElement} */ ($("request-key")).value;
      if (!keyid) throw new df.DatafoldAuthError("key_not_found", "Create or restore a key first.");
      const method = /** @type {HTMLSelectElement} */ ($("request-method")).value;
      const url = input("request-url").value.trim();
      const bodyText = /** @type {HTMLTextAreaElement} */ ($("request-body")).value;
      /** @type {RequestInit} */
      const init = { method };
      if (method !== "GET" && bodyText) init.body = bodyText, init.headers = { "Content-Type": "application/json" };
      const signer = await store.load(keyid);
      const started = performance.now();
      const { request, signed, body } = await signer.signedRequest(url, init);
      const signMs = performance.now() - started;
      let outgoing = request;
      if (input("request-tamper").checked) {
        if (body.length) {
          const changed = new TextEncoder().encode(new TextDecoder().decode(body) + " ");
          outgoing = new Request(request, { body: changed });
        } else {
          const target = new URL(request.url);
          target.searchParams.set("tampered", "1");
          outgoing = new Request(target, request);
        }
      }
      const response = await fetch(outgoing);
      const text = await response.text();
      let reason = "";
      try {
        const doc = JSON.parse(text);
        if (doc && typeof doc.reason === "string") reason = doc.reason;
      } catch {
        /* not JSON */
      }
      $("response").hidden = false;
      const verdict = response.ok ? "accepted" : reason ? `refused: ${reason}` : "refused";
      const hint = reason && HINTS[reason] ? ` ${HINTS[reason]}` : "";
      setStatus("response-status", `${response.status} ${response.statusText}: ${verdict}.${hint} (signed in ${signMs.toFixed(1)} ms)`, response.ok ? "ok" : "error");
      $("response-status").dataset.status = String(response.status);
      $("response-status").dataset.reason = reason;
      $("response-body").textContent = text;
      $("response-signed").textContent = signed.headers.map(([k, v]) => `${k}: ${v}`).join("\n");
    });
  });
}

function wireKeyList() {
  $("key-list").addEventListener("click", (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    const button = target.closest("button[data-action]");
    const item = target.closest("li.key");
    if (!button || !item) return;
    clearError();
    keyAction(/** @type {HTMLElement} */ (item), /** @type {HTMLElement} */ (button).dataset.action ?? "").catch(showError);
  });
}

async function main() {
  input("registration-url").value = new URL("/register/keys", location.href).href;
  $("keys-heading").setAttribute("tabindex", "-1");
  try {
    const support = await df.checkSupport();
    if (!support.indexedDB) throw new df.DatafoldAuthError("unsupported_browser", "This browser does not let this site store data (IndexedDB), so keys cannot be kept.");
    store = await df.KeyStore.open();
  } catch (error) {
    $("support").textContent = `This browser cannot use DataFold keys: ${describe(error)}`;
    $("support").className = "notice notice-error";
    showError(error);
    for (const button of document.querySelectorAll("form button")) /** @type {HTMLButtonElement} */ (button).disabled = true;
    document.body.dataset.ready = "unsupported";
    return;
  }
  $("support").textContent = "This browser supports Ed25519 keys in WebCrypto and stores them in IndexedDB.";
  wireCreate();
  wireConfirm();
  wireRestore();
  wireRequest();
  wireKeyList();
  await renderKeys();
  document.body.dataset.ready = "true";
}

main().catch((error) => {
  showError(error);
  document.body.dataset.ready = "error";
});
