// The test's browser: follows redirects with a cookie jar, signs in on the provider's
// development login page and consents, and stops at agentcred's loopback listener, where it
// prints the listener's HTTP status and page. Usage:
//   node browser.js URL                 an authorization URL, as `agentcred login` prints it
//   node browser.js --device URI CODE   a verification URI and user code (RFC 8628)
//   node browser.js --deny URL          press nothing: answer the redirect with an error
const jar = new Map();
const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
async function go(url, init = {}) {
  for (let hops = 0; hops < 20; hops++) {
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers || {}), cookie: cookieHeader() },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).toString();
      init = {};
      continue;
    }
    return { url, res, body: await res.text() };
  }
  throw new Error('too many redirects');
}
const post = (url, form) => go(url, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(form).toString(),
});
const formAction = (page) => {
  const m = page.body.match(/<form[^>]*action="([^"]+)"/);
  if (!m) throw new Error(`no form on ${page.url}: ${page.body.slice(0, 300)}`);
  return new URL(m[1].replace(/&amp;/g, '&'), page.url).toString();
};
const hidden = (page, name) => page.body.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];

async function signIn(page) {
  // Login, then consent, until the provider lets go of the browser.
  for (let i = 0; i < 5 && /name="prompt"/.test(page.body); i++) {
    const prompt = hidden(page, 'prompt');
    page = await post(formAction(page), prompt === 'login'
      ? { prompt, login: 'alice', password: 'any' } : { prompt });
  }
  return page;
}

const args = process.argv.slice(2);
let page;
if (args[0] === '--device') {
  page = await go(args[1]);
  page = await post(formAction(page), { xsrf: hidden(page, 'xsrf'), user_code: args[2] });
  // oidc-provider asks to confirm the code before it signs the person in; either order.
  for (let i = 0; i < 3; i++) {
    if (/deviceConfirmForm/.test(page.body)) {
      page = await post(formAction(page), {
        xsrf: hidden(page, 'xsrf'), user_code: hidden(page, 'user_code'), confirm: 'yes',
      });
    }
    page = await signIn(page);
  }
} else {
  page = await signIn(await go(args[0]));
}
console.log(`${page.res.status} ${page.url}`);
console.log(page.body);
