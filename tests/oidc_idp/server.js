// A real OpenID Connect provider (npm `oidc-provider`) for the OIDC browser tests
// (accounts/tests/test_browser_oidc.py). Test-only: any login is accepted at the IdP's own
// sign-in form and consent is implied.
//
// Configuration: one JSON object in the OIDC_IDP_CONFIG environment variable:
//   {"host": "127.0.0.1", "port": 0,
//    "clients": [{"client_id", "client_secret", "redirect_uris": [...],
//                 "post_logout_redirect_uris": [...]}],
//    "accounts": {"<login>": {"email": "...", "name": "..."}}}
// The IdP's `sub` is the login typed at its sign-in form. Once listening it prints one line,
// `READY <issuer>`, on stdout.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_IDP_CONFIG || '{}');
const host = config.host || '127.0.0.1';
const accounts = config.accounts || {};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

const server = createServer();
server.listen(config.port || 0, host, () => {
  const issuer = `http://${host}:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: (config.clients || []).map((client) => ({
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomUUID()] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    // The relying party must prove possession of its PKCE verifier.
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    async findAccount(ctx, sub) {
      const known = accounts[sub] || {};
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: known.email || `${sub}@idp.test`,
            email_verified: true,
            name: known.name || sub,
          };
        },
      };
    },
    // Consent is implied: a grant for everything the client asked for.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        return ctx.oidc.provider.Grant.find(grantId);
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
      grant.addOIDCClaims(['email', 'email_verified', 'name']);
      await grant.save();
      return grant;
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`READY ${issuer}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
