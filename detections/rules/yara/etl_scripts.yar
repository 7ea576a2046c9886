/*
   citysoc YARA pack: suspicious ETL and automation scripts.

   The data warehouse and the forecasting center run many shell and Python jobs. A job
   that opens a reverse shell, or pipes a downloaded script straight into a shell, gives
   whoever controls the other end the warehouse's credentials.
*/

rule citysoc_etl_reverse_shell
{
    meta:
        description = "Script with a reverse shell idiom: bash /dev/tcp redirection, nc/ncat -e, socat exec, or Python/Perl socket duplicated onto a shell"
        title = "Script with a reverse shell"
        title_vi = "Script chứa mã mở shell ngược (reverse shell)"
        description_vi = "Script có mẫu reverse shell: chuyển hướng bash /dev/tcp, nc/ncat -e, socat exec, hoặc socket Python/Perl nhân bản vào shell"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "critical"
        tags = "attack.execution attack.t1059.004 attack.t1059.006 attack.command_and_control attack.t1071"
        triage = "Identify the job that ships the script and its last editor; look for outbound connections to the address in the script from the ETL hosts."
    strings:
        $b1 = /(ba)?sh\s+-i\s*[>&]+\s*\/dev\/tcp\/[0-9a-zA-Z.\-]+\/\d{1,5}/
        $b2 = /exec\s+\d+<>\/dev\/tcp\/[0-9a-zA-Z.\-]+\/\d{1,5}/
        $n1 = /\bnc(at)?(\.traditional)?\s+(-[a-z]+\s+)*-e\s+\/bin\/(ba)?sh/
        $n2 = /\bnc(at)?\s+[0-9a-zA-Z.\-]+\s+\d{1,5}\s+-e\s+\/bin\/(ba)?sh/
        $n3 = /mkfifo\s+\S+;\s*(cat|nc)\s[^\n]{0,200}\|\s*\/bin\/(ba)?sh\s+-i/
        $s1 = /socat\s+(tcp|TCP|tcp4|TCP4)(-connect|-CONNECT)?:[^ ]+\s+exec:['"]?(\/bin\/)?(ba)?sh/
        $p1 = /socket\.socket\(.{0,200}os\.dup2\(.{0,200}(subprocess\.call|pty\.spawn|os\.system)\(\s*\[?["']\/bin\/(ba)?sh/s
        $p2 = /use\s+Socket;.{0,300}open\s*\(\s*STDIN\s*,\s*["']>&S["']\).{0,200}exec\s*\(\s*["']\/bin\/(ba)?sh/s
    condition:
        filesize < 5MB and any of them
}

rule citysoc_etl_download_pipe_to_shell
{
    meta:
        description = "Script that downloads code and pipes it straight into a shell or interpreter (curl ... | sh, wget -O- ... | bash, python -c with urlopen+exec)"
        title = "Script piping a download into a shell"
        title_vi = "Script tải mã về rồi chạy thẳng bằng shell"
        description_vi = "Script tải mã về và đẩy thẳng vào shell hoặc trình thông dịch (curl ... | sh, wget -O- ... | bash, python -c với urlopen+exec)"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "high"
        tags = "attack.execution attack.t1059.004 attack.command_and_control attack.t1105"
        triage = "Check whether the URL is an approved internal mirror; jobs must pin and verify what they install, so a pipe to shell from outside is a finding either way."
    strings:
        $c1 = /curl\s+(-[a-zA-Z]+\s+)*['"]?https?:\/\/[^\s|'"]+['"]?\s*(-[a-zA-Z]+\s+)*\|\s*(sudo\s+)?(ba|da|z)?sh\b/
        $c2 = /wget\s+(-[a-zA-Z]+\s+)*(-O\s*-|-qO-|-O-)\s*['"]?https?:\/\/[^\s|'"]+['"]?\s*\|\s*(sudo\s+)?(ba|da|z)?sh\b/
        $c3 = /wget\s+['"]?https?:\/\/[^\s|'"]+['"]?\s+(-[a-zA-Z]+\s+)*(-O\s*-|-qO-|-O-)\s*\|\s*(sudo\s+)?(ba|da|z)?sh\b/
        $c4 = /(curl|wget)\s[^\n|]{0,200}\|\s*(sudo\s+)?python[23]?\s+-\s*$/
        $py = /exec\s*\(\s*(urllib\.request\.)?urlopen\s*\(.{0,200}\)\.read\(\)/
    condition:
        filesize < 5MB and any of them
}
