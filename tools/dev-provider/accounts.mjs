// Demo accounts of the development provider, shaped like Kontur's: an opaque GUID-like `sub`,
// Cyrillic names with a patronymic (`middle_name`), and accounts that lack claims (a phone-only
// account has no e-mail at all, so the gate must cope with a missing `email`).

/**
 * @typedef {object} DemoUser
 * @property {string} login     what is typed into the login form
 * @property {string} password
 * @property {Record<string, unknown> & { sub: string }} claims  every claim the account has; the
 *   provider hands out only those the granted scopes allow
 */

// Fixed (not random) subjects so that tests and the demo origin see the same `sub` on every run.
/** @type {readonly DemoUser[]} */
export const DEMO_USERS = Object.freeze([
  {
    login: 'demo',
    password: 'demo',
    claims: {
      sub: '6f1c2a9e-4b7d-4e0a-9c1f-2d3b4a5c6e7f',
      name: 'Иванов Иван Иванович',
      given_name: 'Иван',
      family_name: 'Иванов',
      middle_name: 'Иванович',
      email: 'demo@example.kontur.ru',
      email_verified: true,
      phone_number: '+79990000000',
      phone_number_verified: true,
      updated_at: 1735689600,
    },
  },
  {
    login: 'petrov',
    password: 'petrov',
    claims: {
      sub: 'b2e4d6f8-1a3c-4e5f-8a7b-9c0d1e2f3a4b',
      name: 'Петров Пётр Петрович',
      given_name: 'Пётр',
      family_name: 'Петров',
      middle_name: 'Петрович',
      email: 'petrov@example.kontur.ru',
      email_verified: true,
      phone_number: '+79990000001',
      phone_number_verified: true,
      updated_at: 1735689600,
    },
  },
  {
    login: 'phone',
    password: 'phone',
    claims: {
      sub: '0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a',
      name: 'Сидорова Анна Сергеевна',
      given_name: 'Анна',
      family_name: 'Сидорова',
      middle_name: 'Сергеевна',
      phone_number: '+79990000002',
      phone_number_verified: true,
      updated_at: 1735689600,
    },
  },
]);

/** Claims released per scope, as in OpenID Connect Core §5.4 (and Kontur's documentation). */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'middle_name', 'updated_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
};

/**
 * A mutable account directory for one provider instance, so a test can remove, disable or rename a
 * user: a removed or disabled account's tokens get 401 at userinfo and `invalid_grant` at refresh,
 * as when a Kontur account is deleted or blocked, or consent is withdrawn.
 * @param {readonly DemoUser[]} users
 */
export function createAccounts(users) {
  /** @type {Map<string, DemoUser>} */
  const bySub = new Map(users.map((user) => [user.claims.sub, structuredClone(user)]));
  /** Subjects of disabled accounts (kept, unlike removed ones, so they can be enabled again). */
  const disabled = new Set();

  /** @param {string} loginOrSub */
  const find = (loginOrSub) => [...bySub.values()].find((user) => user.claims.sub === loginOrSub || user.login === loginOrSub);

  return {
    /** @returns {DemoUser[]} */
    list: () => [...bySub.values()],

    /** Checks a login form submission; returns the account's sub or undefined. */
    check(/** @type {string} */ login, /** @type {string} */ password) {
      const wanted = String(login).trim().toLowerCase();
      for (const user of bySub.values()) {
        // Kontur accepts a login, an e-mail or a phone number; mimic that loosely.
        const names = [user.login, user.claims.email, user.claims.phone_number]
          .filter((value) => typeof value === 'string')
          .map((value) => String(value).toLowerCase());
        if (names.includes(wanted) && user.password === password && !disabled.has(user.claims.sub)) return user.claims.sub;
      }
      return undefined;
    },

    /** @param {string} loginOrSub @returns {boolean} whether someone was removed */
    remove(loginOrSub) {
      for (const [sub, user] of bySub) {
        if (sub === loginOrSub || user.login === loginOrSub) return bySub.delete(sub);
      }
      return false;
    },

    /**
     * @param {string} loginOrSub @param {boolean} off
     * @returns {boolean} whether the account exists
     */
    setDisabled(loginOrSub, off) {
      const user = find(loginOrSub);
      if (!user) return false;
      if (off) disabled.add(user.claims.sub);
      else disabled.delete(user.claims.sub);
      return true;
    },

    /**
     * Sets (or, with `undefined`, removes) claims of an account; `sub` cannot change.
     * @param {string} loginOrSub @param {Record<string, unknown>} claims
     * @returns {boolean} whether the account exists
     */
    update(loginOrSub, claims) {
      const user = find(loginOrSub);
      if (!user) return false;
      for (const [name, value] of Object.entries(claims)) {
        if (name === 'sub') throw new TypeError('an account keeps its sub');
        if (value === undefined) delete user.claims[name];
        else user.claims[name] = value;
      }
      return true;
    },

    /**
     * oidc-provider's `findAccount`: returns undefined for unknown, removed or disabled subjects,
     * which the provider turns into `invalid_grant` on refresh and 401 at userinfo.
     * @param {unknown} _ctx
     * @param {string} sub
     */
    async findAccount(_ctx, sub) {
      const user = bySub.get(sub);
      if (!user || disabled.has(sub)) return undefined;
      return {
        accountId: sub,
        // The provider filters these by the granted scopes/claims; return everything.
        async claims() {
          return structuredClone(user.claims);
        },
      };
    },
  };
}
