/*
   citysoc YARA pack: webshells dropped where the shared data warehouse ingests files.

   The warehouse ingest folder accepts uploads from partner agencies; a script file that
   lands there and evaluates request input is a webshell waiting for a web server that
   serves the folder. Each rule names one language family so the alert says which.
*/

rule citysoc_webshell_php_eval_request
{
    meta:
        description = "PHP file that evaluates or executes data taken straight from the HTTP request (eval/assert/system on $_GET/$_POST/$_REQUEST/$_COOKIE), the core of most PHP webshells"
        title = "PHP webshell evaluating request input"
        title_vi = "Webshell PHP thực thi dữ liệu từ yêu cầu HTTP"
        description_vi = "Tệp PHP thực thi hoặc đánh giá dữ liệu lấy thẳng từ yêu cầu HTTP (eval/assert/system trên $_GET/$_POST/$_REQUEST/$_COOKIE), phần lõi của đa số webshell PHP"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "critical"
        tags = "attack.persistence attack.t1505.003 attack.execution attack.t1059.004"
        triage = "Find who uploaded the file into the ingest folder and whether any web server serves that folder; quarantine the file and check the web access log for requests to its name."
    strings:
        $php = "<?php" nocase
        $php_short = "<?=" 
        $exec1 = /\b(eval|assert|system|shell_exec|passthru|exec|popen|proc_open)\s*\(\s*(base64_decode\s*\(\s*|str_rot13\s*\(\s*|gzinflate\s*\(\s*|stripslashes\s*\(\s*)*\$_(GET|POST|REQUEST|COOKIE|SERVER)\s*\[/ nocase
        $exec2 = /\bpreg_replace\s*\(\s*['"]\/[^'"]*\/[a-z]*e[a-z]*['"]\s*,\s*\$_(GET|POST|REQUEST|COOKIE)/ nocase
        $exec3 = /\bcreate_function\s*\([^)]*\$_(GET|POST|REQUEST|COOKIE)/ nocase
        $backtick = /`\s*\$_(GET|POST|REQUEST|COOKIE)\s*\[/
    condition:
        filesize < 2MB and ($php or $php_short) and any of ($exec*, $backtick)
}

rule citysoc_webshell_php_obfuscated_loader
{
    meta:
        description = "PHP file that decodes and evaluates an embedded blob (eval(gzinflate(base64_decode(...)))) as packed webshells do"
        title = "Obfuscated PHP webshell loader"
        title_vi = "Trình nạp webshell PHP bị làm rối"
        description_vi = "Tệp PHP giải mã rồi thực thi một khối dữ liệu nhúng (eval(gzinflate(base64_decode(...)))) như các webshell đóng gói vẫn làm"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "high"
        tags = "attack.persistence attack.t1505.003 attack.defense_evasion attack.t1027"
        triage = "Decode the blob offline (never run it); packed loaders in the ingest folder are rarely legitimate."
    strings:
        $php = "<?php" nocase
        $loader = /\beval\s*\(\s*(gzinflate|gzuncompress|gzdecode|str_rot13|base64_decode)\s*\(\s*(gzinflate|gzuncompress|gzdecode|str_rot13|base64_decode)\s*\(/ nocase
    condition:
        filesize < 2MB and $php and $loader
}

rule citysoc_webshell_jsp_runtime_exec
{
    meta:
        description = "JSP page that runs an operating system command taken from a request parameter (Runtime.getRuntime().exec(request.getParameter(...)))"
        title = "JSP webshell running OS commands"
        title_vi = "Webshell JSP chạy lệnh hệ điều hành"
        description_vi = "Trang JSP chạy lệnh hệ điều hành lấy từ tham số yêu cầu (Runtime.getRuntime().exec(request.getParameter(...)))"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "critical"
        tags = "attack.persistence attack.t1505.003 attack.execution attack.t1059"
        triage = "Check which application servers deploy from the ingest folder; a JSP with command execution must be removed and the server's access log reviewed."
    strings:
        $jsp1 = "<%@" 
        $jsp2 = "<%"
        $rt = /Runtime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec\s*\(/
        $pb = "new ProcessBuilder("
        $param = /request\s*\.\s*getParameter\s*\(/
    condition:
        filesize < 2MB and ($jsp1 or $jsp2) and ($rt or $pb) and $param
}

rule citysoc_webshell_aspx_process_start
{
    meta:
        description = "ASPX page that starts cmd.exe/powershell or evaluates request input (Process.Start with Request[...] or JScript eval(Request...))"
        title = "ASPX webshell starting processes"
        title_vi = "Webshell ASPX khởi chạy tiến trình"
        description_vi = "Trang ASPX khởi chạy cmd.exe/powershell hoặc thực thi dữ liệu từ yêu cầu (Process.Start với Request[...] hoặc JScript eval(Request...))"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "critical"
        tags = "attack.persistence attack.t1505.003 attack.execution attack.t1059.003"
        triage = "Find IIS sites whose physical path includes the ingest folder; remove the page and review IIS logs for its URL."
    strings:
        $page = /<%@\s*Page\s/ nocase
        $lang = /Language\s*=\s*["']?(C#|csharp|JScript|VB)/ nocase
        $ps1 = "Process.Start(" nocase
        $ps2 = "ProcessStartInfo(" nocase
        $cmd1 = "cmd.exe" nocase
        $cmd2 = "powershell" nocase
        $req = /Request(\.Form|\.QueryString|\.Item)?\s*\[/
        $eval = /\beval\s*\(\s*Request/ nocase
    condition:
        filesize < 2MB and $page and $lang and
        ( (1 of ($ps*) and 1 of ($cmd*) and $req) or $eval )
}
