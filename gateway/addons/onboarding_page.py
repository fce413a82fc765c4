"""The onboarding page's HTML (kept as Python so it ships inside the package)."""

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gateway: install the certificate</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
a.btn{{display:inline-block;margin:.3rem .5rem .3rem 0;padding:.6rem 1rem;border-radius:.4rem;background:#1d4ed8;color:#fff;text-decoration:none}}
code{{background:#eee;padding:.1rem .3rem;border-radius:.2rem;word-break:break-all}}
</style></head><body>
<h1>Trust the gateway's certificate</h1>
<p>This device reaches the Internet through <b>gateway</b>. To let it see inside HTTPS,
install the gateway's certificate authority and trust it.</p>
<p>
<a class="btn" href="/cert/pem">PEM (Linux, Firefox, macOS)</a>
<a class="btn" href="/cert/cer">DER .cer (Android, Windows, iOS)</a>
<a class="btn" href="/cert/p12">PKCS#12 .p12</a>
</p>
<h2>Steps</h2>
<ul>
<li><b>iOS</b>: download the .cer, then Settings &gt; General &gt; VPN &amp; Device Management &gt; install the profile;
then Settings &gt; General &gt; About &gt; Certificate Trust Settings &gt; enable full trust for <i>{cn}</i>.</li>
<li><b>Android</b>: download the .cer, then Settings &gt; Security &gt; Encryption &amp; credentials &gt;
Install a certificate &gt; CA certificate. Apps must opt in to user CAs; many do not.</li>
<li><b>Windows</b>: open the .cer, Install Certificate &gt; Local Machine &gt; Trusted Root Certification Authorities.</li>
<li><b>macOS</b>: open the PEM in Keychain Access, then set it to <i>Always Trust</i>.</li>
<li><b>Linux</b>: copy the PEM to <code>/usr/local/share/ca-certificates/gateway.crt</code> and run <code>update-ca-certificates</code>.</li>
<li><b>Firefox</b> keeps its own store: Settings &gt; Certificates &gt; Import the PEM.</li>
</ul>
<p>Check the fingerprint (SHA-256) against <code>gateway ca</code> on the gateway's machine:<br>
<code>{fingerprint}</code></p>
<p>Apps that pin their certificates will refuse the gateway; add their hosts to
<code>ignore_hosts</code> to pass them through untouched.</p>
</body></html>
"""
