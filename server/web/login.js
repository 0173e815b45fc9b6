// The login page (served at /login, and at / without a session), and the
// first-run "create the admin account" form (/login#setup, offered by the
// server only to a client on its own machine while no account exists).
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const form = $('login-form'), err = $('login-error'), note = $('login-note');
  let setup = false;

  function showError(text) {
    err.textContent = text;
    err.hidden = !text;
  }

  function back() {
    // Back to the gallery, where the user was (its #hash), never elsewhere.
    const hash = location.pathname === '/' ? location.hash : '';
    location.replace('/' + (hash && hash !== '#setup' ? hash : ''));
  }

  async function init() {
    let me = null;
    try {
      const r = await fetch('/api/auth/me', { cache: 'no-store' });
      if (r.ok) me = await r.json();
    } catch (e) { /* offline: the form still works once back */ }
    if (me && me.mode === 'accounts') { back(); return; }   // logged in already
    if (me && me.mode === 'open') {
      if (me.can_setup) {
        setup = true;
        $('login-title').textContent = 'Create the admin account';
        note.textContent = 'No account exists yet: anyone who can reach this server can see and upload photos. ' +
          'Create the first account (an admin); from then on, everybody logs in.';
        note.hidden = false;
        $('login-again-row').hidden = false;
        $('login-again').required = true;
        $('login-pass').autocomplete = 'new-password';
        $('login-submit').textContent = 'Create and log in';
      } else {
        note.textContent = 'This server has no accounts yet: the gallery is open.';
        note.hidden = false;
        form.hidden = true;
        const a = document.createElement('a');
        a.href = '/';
        a.textContent = 'Open the gallery';
        note.after(a);
      }
    }
    $('login-user').focus();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError('');
    const username = $('login-user').value.trim(), password = $('login-pass').value;
    if (setup && password !== $('login-again').value) {
      showError('The two passwords differ.');
      return;
    }
    $('login-submit').disabled = true;
    try {
      const r = await fetch(setup ? '/api/auth/setup' : '/api/auth/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username, password }),
        credentials: 'same-origin',
      });
      if (r.ok) { back(); return; }
      let msg = 'Could not log in (' + r.status + ').';
      try { msg = (await r.json()).error || msg; } catch (x) { /* not JSON */ }
      if (r.status === 429) {
        const s = r.headers.get('Retry-After');
        msg = 'Too many failed attempts: try again in ' + (s || 'a few') + ' seconds.';
      }
      showError(msg.charAt(0).toUpperCase() + msg.slice(1) + (msg.endsWith('.') ? '' : '.'));
      $('login-pass').select();
    } catch (x) {
      showError('The server cannot be reached.');
    } finally {
      $('login-submit').disabled = false;
    }
  });

  init();
})();
