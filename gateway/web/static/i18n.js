// The page's words by key, in the chosen language. Every user-visible string in the page's
// scripts goes through t(key, english) so the Simplified Chinese dictionary can cover it.
(function () {
  "use strict";
  const dictionaries = { en: {} };
  let lang = "en";
  function t(key, english, vars) {
    let s = (dictionaries[lang] && dictionaries[lang][key]) || english || key;
    if (vars) for (const k of Object.keys(vars)) s = s.split("{" + k + "}").join(String(vars[k]));
    return s;
  }
  window.nassavI18n = { t, dictionaries, get lang() { return lang; }, set lang(v) { lang = v; } };
  window.t = t;
})();
